// The attribution explorer (README "In the browser"): a web page on tda-server's HTTP listener
// (--http-listen) that calls only the JSON API (server/http_gateway.h), so everything it shows
// is available to scripts too.
//
//   GET /                   302 to /explorer/
//   GET /explorer           302 to /explorer/
//   GET /explorer/          index.html
//   GET /explorer/NAME      an embedded file (server/explorer_files.h); others 404
//
// The files hold no data, so they are served without a token; each data call the page makes
// sends the token the user typed ("Authorization: Bearer ..."). They are served with a
// Content-Security-Policy that allows only the server's own scripts, styles and API.
#pragma once

namespace httplib {
class Server;
}

namespace tda {

// Registers the routes above (before the listener serves).
void AddExplorerRoutes(httplib::Server* routes);

}  // namespace tda
