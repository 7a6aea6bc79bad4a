// A running tda gRPC server: AttributionService for the indexes of a repository or for one
// index (server/index_repository.h), AdminService, JobService (with a state
// directory: background jobs and schedules, src/jobs), the standard health service
// (grpc.health.v1.Health, SERVING once started) and server reflection, on one listening
// address. Used by tda-server's main and by tests that want a server in-process.
//
// Thread-safety: Shutdown may be called from any thread, once; Wait blocks until shutdown.
#pragma once

#include <grpcpp/server.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "jobs/job_runner.h"
#include "server/server_security.h"

namespace tda {

struct ServerOptions {
  // What to serve: one index directory, or a repository DIR/<name>/<version>/ (exactly one).
  std::string index_dir;
  std::string repository_dir;
  std::map<std::string, int64_t> pins;     // repository: name -> the version it must serve
  double repository_poll_seconds = 5;      // repository rescan period; 0: on reload only
  std::string listen = "127.0.0.1:50051";  // host:port; port 0 picks a free port
  int64_t max_message_bytes = 64 << 20;    // per request and per response
  // Where the server keeps its state: the job database "<state_dir>/jobs.db". Empty: no
  // JobService (its calls answer UNIMPLEMENTED).
  std::string state_dir;
  // Where job paths may point (src/jobs/job_paths.h): inputs under data_root, outputs under
  // output_root; empty: "<state_dir>/data" and "<state_dir>/outputs". Created if missing.
  std::string data_root;
  std::string output_root;
  JobRunnerOptions jobs;  // db_path and roots are set from state_dir and the roots above
  // Attribute calls computed at once; more wait their turn. Each query already spreads its
  // scan over every compute thread, so running more at once only oversubscribes the cores.
  int query_slots = 1;
  // Attribute calls waiting for a slot (more: RESOURCE_EXHAUSTED at once; 0: no bound), and
  // calls of one caller (server/caller.h) in flight or queued (0: no bound).
  int query_queue = 64;
  int caller_queries = 0;
  // Cross-request batching of Attribute (server/query_batcher.h): at most max_batch_size
  // queries (1 to kMaxQueriesPerRequest) per batch, waiting at most batch_timeout_micros for
  // more (0: batching off).
  int64_t max_batch_size = 32;
  int64_t batch_timeout_micros = 2000;
  // TLS, tokens and the listen policy (server/server_security.h).
  ServerSecurityOptions security;
  // Queued + running jobs per submitter; 0 = no limit (sets jobs.max_active_per_submitter).
  int64_t job_quota = 0;
  // HOST:PORT of the JSON-over-HTTP API (server/http_gateway.h), under the same listen policy,
  // TLS and tokens; empty: none. Port 0 picks a free port.
  std::string http_listen;
  // HOST:PORT of the Prometheus metrics (GET /metrics, no token; server/server_metrics.h), under
  // the same listen policy and TLS; empty: none. Port 0 picks a free port.
  std::string metrics_listen;
  // A router (server/router_service.h): Attribute fans out to the shards of this shard map
  // (index/shard_map.h), whose local_index is served in place of index_dir / repository_dir.
  std::string router_shard_map;
};

class AdminServiceImpl;
class AttributionServiceImpl;
class HttpListener;
class IndexRepository;
class JobServiceImpl;
class JsonGateway;
class ServerMetrics;
class RouterServiceImpl;
class ShardServiceImpl;
class TokenAuthProcessor;

class TdaServer {
 public:
  // Opens options.index_dir, or the repository's newest (or pinned) versions, checking
  // versions and sizes (errors as Attributor::Open; a repository's broken versions are
  // reported, not fatal), starts serving, and verifies every file's checksum in the background
  // (IndexVerifier, per index): on a mismatch health turns NOT_SERVING and that index's queries
  // fail with DATA_LOSS naming the file. A repository is then rescanned every
  // repository_poll_seconds and on ReloadIndexes (hot reload: server/index_repository.h).
  // kUnavailable when the address cannot be bound; kInvalidArgument when the listen policy
  // refuses the address or a TLS or token file is malformed (server/server_security.h).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<TdaServer>> Start(const ServerOptions& options);
  ~TdaServer();  // shuts down if still running

  // The bound address, with the actual port (e.g. "127.0.0.1:40123").
  const std::string& address() const { return address_; }
  int port() const { return port_; }
  // The HTTP listener's bound address ("" without http_listen) and its scheme (http, https).
  std::string http_address() const;
  std::string http_scheme() const;
  // "http(s)://HOST:PORT/metrics" ("" without metrics_listen).
  std::string metrics_url() const;

  // Stops accepting calls, marks health NOT_SERVING, lets calls in flight finish for up to
  // `grace_seconds`, then cancels what remains.
  void Shutdown(double grace_seconds = 5.0);
  void Wait();

  // Re-reads the --auth-tokens file (SIGHUP); open connections stay. Returns the number of
  // tokens; on an error the previous tokens stay in force. kFailedPrecondition without tokens.
  [[nodiscard]] absl::StatusOr<size_t> ReloadTokens();
  // Asks for a rescan of the index repository (SIGHUP) without waiting for it.
  void RequestIndexReload();

 private:
  TdaServer() = default;
  std::unique_ptr<AttributionServiceImpl> service_;
  std::unique_ptr<ShardServiceImpl> shard_service_;
  std::unique_ptr<RouterServiceImpl> router_;  // with router_shard_map only
  std::unique_ptr<JobRunner> job_runner_;  // with state_dir only
  std::unique_ptr<JobServiceImpl> job_service_;
  std::shared_ptr<TokenAuthProcessor> token_processor_;  // with --auth-tokens only
  std::unique_ptr<AdminServiceImpl> admin_service_;
  std::unique_ptr<JsonGateway> json_gateway_;  // with http_listen only
  // With metrics_listen only. Declared before server_ so that it outlives the call-log
  // interceptors; its listener stops in Shutdown, before what it reads goes.
  std::unique_ptr<ServerMetrics> metrics_;
  std::unique_ptr<HttpListener> metrics_listener_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<HttpListener> http_listener_;  // stopped before server_ goes
  std::string address_;
  int port_ = 0;
  std::atomic<bool> shut_down_{false};
  // Last: destroyed first, so verifiers still running report health to a live server_.
  std::unique_ptr<IndexRepository> repository_;
};

}  // namespace tda
