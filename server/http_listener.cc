#include "server/http_listener.h"

#include <httplib.h>
#include <sys/socket.h>

#include <chrono>
#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace tda {

absl::StatusOr<std::unique_ptr<HttpListener>> HttpListener::Bind(
    const HttpListenerOptions& options) {
  const size_t colon = options.listen.rfind(':');
  int port = -1;
  if (colon == std::string::npos || !absl::SimpleAtoi(options.listen.substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat(options.flag, " '", options.listen, "' is not HOST:PORT"));
  }
  absl::StatusOr<std::vector<std::string>> warnings =
      CheckListenPolicy(options.listen, options.security);
  if (!warnings.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(options.flag, ": ", warnings.status().message()));
  }
  for (const std::string& warning : *warnings) {
    std::cerr << "tda-server: WARNING: " << options.flag << ": " << warning << "\n";
  }
  std::string host = options.listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }

  auto listener = std::unique_ptr<HttpListener>(new HttpListener());
  const ServerSecurityOptions& security = options.security;
  if (security.tls()) {
    listener->server_ = std::make_unique<httplib::SSLServer>(
        security.tls_cert_file.c_str(), security.tls_key_file.c_str(),
        security.tls_client_ca_file.empty() ? nullptr : security.tls_client_ca_file.c_str());
    listener->tls_ = true;
  } else {
    listener->server_ = std::make_unique<httplib::Server>();
  }
  if (!listener->server_->is_valid()) {
    return absl::InvalidArgumentError(
        absl::StrCat(options.flag, ": cannot serve HTTPS with --tls-cert ", security.tls_cert_file,
                     " and --tls-key ", security.tls_key_file,
                     security.tls_client_ca_file.empty() ? "" : " and --tls-client-ca ",
                     security.tls_client_ca_file, " (unreadable or not a matching PEM pair)"));
  }
  listener->server_->set_payload_max_length(static_cast<size_t>(options.max_body_bytes));
  // httplib's default adds SO_REUSEPORT, which lets a second server bind the same port and
  // take half its connections; refuse an address in use instead.
  listener->server_->set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  if (port == 0) {
    port = listener->server_->bind_to_any_port(host);
  } else if (!listener->server_->bind_to_port(host, port)) {
    port = -1;
  }
  if (port <= 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen for HTTP on ", options.flag, " '",
                                               options.listen, "' (address in use or not local?)"));
  }
  listener->address_ = absl::StrCat(options.listen.substr(0, colon), ":", port);
  return listener;
}

void HttpListener::AddTextRoute(const std::string& path, const std::string& content_type,
                                std::function<std::string()> text) {
  server_->Get(path, [content_type, text = std::move(text)](const httplib::Request&,
                                                            httplib::Response& response) {
    response.set_content(text(), content_type);
  });
}

void HttpListener::Serve() {
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  // Until it runs, stop() would not reach the accept loop (and Stop would wait forever).
  for (int waited_ms = 0; !server_->is_running() && waited_ms < 5000; ++waited_ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void HttpListener::Stop() {
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

HttpListener::~HttpListener() { Stop(); }

}  // namespace tda
