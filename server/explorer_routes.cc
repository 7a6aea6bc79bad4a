#include "server/explorer_routes.h"

#include <httplib.h>

#include <string>

#include "absl/strings/match.h"
#include "server/explorer_files.h"

namespace tda {

namespace {

const char* ContentType(const std::string& name) {
  if (absl::EndsWith(name, ".html")) return "text/html; charset=utf-8";
  if (absl::EndsWith(name, ".js")) return "text/javascript; charset=utf-8";
  if (absl::EndsWith(name, ".css")) return "text/css; charset=utf-8";
  return "application/octet-stream";
}

// Writes the embedded file `name`; false when there is none.
bool ServeFile(const std::string& name, httplib::Response* out) {
  for (const EmbeddedFile& file : ExplorerFiles()) {
    if (name != file.name) continue;
    out->status = 200;
    out->set_content(reinterpret_cast<const char*>(file.bytes), file.size, ContentType(name));
    out->set_header("Cache-Control", "no-cache");
    out->set_header("X-Content-Type-Options", "nosniff");
    out->set_header("Content-Security-Policy",
                    "default-src 'none'; script-src 'self'; style-src 'self'; "
                    "connect-src 'self'; img-src 'self' data: blob:; form-action 'none'; "
                    "frame-ancestors 'none'; base-uri 'none'");
    return true;
  }
  return false;
}

}  // namespace

void AddExplorerRoutes(httplib::Server* routes) {
  auto to_explorer = [](const httplib::Request&, httplib::Response& out) {
    out.set_redirect("/explorer/");
  };
  routes->Get("/", to_explorer);
  routes->Get("/explorer", to_explorer);
  routes->Get("/explorer/", [](const httplib::Request&, httplib::Response& out) {
    ServeFile("index.html", &out);
  });
  // A miss leaves status 404 and no body: the listener's error handler writes the JSON error.
  routes->Get(R"(/explorer/([A-Za-z0-9._-]+))",
              [](const httplib::Request& http, httplib::Response& out) {
                if (!ServeFile(http.matches[1].str(), &out)) out.status = 404;
              });
}

}  // namespace tda
