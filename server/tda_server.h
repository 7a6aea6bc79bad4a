// A running tda gRPC server: AttributionService for one index, the standard health service
// (grpc.health.v1.Health, SERVING once started) and server reflection, on one listening
// address. Used by tda-server's main and by tests that want a server in-process.
//
// Thread-safety: Shutdown may be called from any thread, once; Wait blocks until shutdown.
#pragma once

#include <grpcpp/server.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "attribution/attributor.h"

namespace tda {

struct ServerOptions {
  std::string index_dir;
  std::string listen = "127.0.0.1:50051";  // host:port; port 0 picks a free port
  int64_t max_message_bytes = 64 << 20;    // per request and per response
};

class AttributionServiceImpl;

class TdaServer {
 public:
  // Opens options.index_dir (errors as Attributor::Open) and starts serving it.
  static absl::StatusOr<std::unique_ptr<TdaServer>> Start(const ServerOptions& options);
  // Serves an attributor that is already open (options.index_dir is ignored).
  // kUnavailable when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<TdaServer>> Start(
      const ServerOptions& options, std::shared_ptr<const Attributor> attributor);
  ~TdaServer();  // shuts down if still running

  // The bound address, with the actual port (e.g. "127.0.0.1:40123").
  const std::string& address() const { return address_; }
  int port() const { return port_; }

  // Stops accepting calls, marks health NOT_SERVING, lets calls in flight finish for up to
  // `grace_seconds`, then cancels what remains.
  void Shutdown(double grace_seconds = 5.0);
  void Wait();

 private:
  TdaServer() = default;
  std::unique_ptr<AttributionServiceImpl> service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
  int port_ = 0;
  std::atomic<bool> shut_down_{false};
};

}  // namespace tda
