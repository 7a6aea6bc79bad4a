// tda-server's HTTP listener (--http-listen HOST:PORT): one httplib server on its own thread, bound
// before anything is served, that other parts register routes on (the JSON gateway,
// server/http_gateway.h; the explorer) -- or, on --metrics-listen, a second one for /metrics.
//
// Safety rules are the gRPC port's (server/server_security.h, CheckListenPolicy): loopback only,
// unless TLS and tokens, or --insecure. With TLS (--tls-cert/--tls-key) it serves HTTPS with the
// same certificate; with --tls-client-ca it requires client certificates signed by that CA. Request
// bodies larger than `max_body_bytes` are refused with 413 before any handler runs.
//
// Usage: Bind, register routes on routes(), Serve; Stop (or the destructor) ends it. Thread-safety:
// routes() only before Serve; Stop from any thread, once or more.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "server/server_security.h"

namespace httplib {
class Server;
}

namespace tda {

struct HttpListenerOptions {
  std::string listen;  // HOST:PORT; port 0 picks a free port
  ServerSecurityOptions security;
  int64_t max_body_bytes = 64 << 20;
  std::string flag = "--http-listen";  // named in errors and warnings
};

class HttpListener {
 public:
  // kInvalidArgument when the listen policy refuses the address (its warnings are logged to stderr)
  // or HOST:PORT is malformed, or the TLS files are unusable; kUnavailable when the address cannot
  // be bound.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<HttpListener>> Bind(
      const HttpListenerOptions& options);
  ~HttpListener();

  httplib::Server& routes() { return *server_; }
  // GET `path` answers 200 with `text()` (called per request, on the serving thread).
  void AddTextRoute(const std::string& path, const std::string& content_type,
                    std::function<std::string()> text);
  // Starts answering requests on a thread of its own.
  void Serve();
  // Stops accepting and returns once the serving thread is done.
  void Stop();

  // The bound address with the actual port, e.g. "127.0.0.1:40123"; "https" or "http".
  const std::string& address() const { return address_; }
  const char* scheme() const { return tls_ ? "https" : "http"; }

 private:
  HttpListener() = default;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::string address_;
  bool tls_ = false;
};

}  // namespace tda
