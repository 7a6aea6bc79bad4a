// tda-server: serves gradient indexes over gRPC -- one (--index DIR) or every index of a
// repository (--repository DIR, hot-reloaded: server/index_repository.h) -- as
// tda.v1.AttributionService, with tda.v1.AdminService, the standard health service and server
// reflection; with --state-dir also tda.v1.JobService, background jobs run by tda-job-worker
// processes) until SIGINT or SIGTERM, then shuts down gracefully. SIGHUP re-reads the
// --auth-tokens file (a bad file keeps the previous tokens) and rescans the repository;
// connections stay up.
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "common/flags.h"
#include "model/model.h"
#include "server/freed_memory.h"
#include "server/index_repository.h"
#include "server/repository_layout.h"
#include "server/tda_server.h"

int main(int argc, char** argv) {
  tda::FlagParser flags(
      "tda-server",
      "(--index DIR | --repository DIR | --router SHARDMAP) [--listen HOST:PORT] [options]",
      "Serves gradient indexes built by 'tda index build' over gRPC: tda.v1.AttributionService\n"
      "(Attribute, DescribeIndex, ListIndexes, GetSample), grpc.health.v1.Health and server\n"
      "reflection. Prints 'tda-server listening on HOST:PORT' once ready; stops on SIGINT or\n"
      "SIGTERM; SIGHUP re-reads --auth-tokens and rescans --repository.");
  flags.AddString("index", "DIR", "",
                  "one index directory to serve, named after its last component (version 1)");
  flags.AddString("repository", "DIR", "",
                  "serve every index DIR/NAME/VERSION/ by NAME (VERSION a positive integer; the "
                  "newest that opens and verifies serves); new versions are swapped in live");
  flags.AddString("router", "SHARDMAP", "",
                  "route queries to the shard servers of this shard map ('tda index split' "
                  "writes a template); see README 'Sharded serving'");
  flags.AddRepeated("pin", "NAME=VERSION", "serve this version of NAME only");
  flags.AddDouble("repository-poll-seconds", "SECONDS", 5,
                  "rescan --repository this often for new versions (0 = only on SIGHUP or "
                  "'tda admin reload')");
  flags.AddString("listen", "HOST:PORT", "127.0.0.1:50051",
                  "address to listen on; port 0 picks a free port");
  flags.AddInt("max-message-bytes", "N", 64 << 20, "largest request or response, in bytes");
  flags.AddInt("threads", "N", 0, "compute threads per query (0 = OMP_NUM_THREADS or all cores)");
  flags.AddInt("query-slots", "N", 1,
               "queries computed at once (each uses every compute thread; more wait)");
  flags.AddInt("query-queue", "N", 64,
               "queries waiting for a slot at most; more are refused at once (0 = no bound)");
  flags.AddInt("caller-queries", "N", 0,
               "queries of one caller in flight or queued at most (0 = no bound)");
  flags.AddInt("max-batch-size", "N", 32,
               "queries of concurrent Attribute calls computed as one batch at most");
  flags.AddInt("batch-timeout-micros", "N", 2000,
               "how long a batch waits for more calls before it runs (0 = batching off); a "
               "batch runs sooner once it has as many callers as recent batches had");
  flags.AddDouble("shutdown-grace", "SECONDS", 5.0,
                  "how long calls in flight may finish after a stop signal");
  flags.AddString("state-dir", "DIR", "",
                  "keep server state here: the job database DIR/jobs.db (enables JobService)");
  flags.AddString("data-root", "DIR", "",
                  "job inputs must lie under DIR (relative job paths resolve against it; "
                  "default: <state-dir>/data)");
  flags.AddString("output-root", "DIR", "",
                  "job outputs must lie under DIR (relative job paths resolve against it; "
                  "default: <state-dir>/outputs); the state dir's own files are never outputs");
  flags.AddInt("job-slots", "N", 1, "background jobs running at once");
  flags.AddInt("job-threads", "N", 1, "compute threads of each background job");
  flags.AddInt("job-nice", "N", 10, "CPU priority of job workers relative to queries (0-19)");
  flags.AddString("job-worker", "PATH", "",
                  "tda-job-worker executable (default: the one beside tda-server)");
  // Team use (README "Running it for a team"; server/server_security.h).
  flags.AddString("auth-tokens", "FILE", "",
                  "require bearer tokens from FILE ('tda admin token create'); re-read on SIGHUP");
  flags.AddString("tls-cert", "FILE", "", "PEM certificate chain: serve TLS");
  flags.AddString("tls-key", "FILE", "", "PEM private key of --tls-cert");
  flags.AddString("tls-client-ca", "FILE", "",
                  "PEM CA: require client certificates signed by it (mutual TLS)");
  flags.AddBool("insecure", "allow a non-loopback --listen without TLS and tokens");
  flags.AddInt("job-quota", "N", 0, "queued + running jobs per submitter (0 = no limit)");
  flags.AddString("http-listen", "HOST:PORT", "",
                  "also serve the JSON-over-HTTP API here (same TLS, tokens and listen policy; "
                  "port 0 picks a free port)");
  flags.AddString("metrics-listen", "HOST:PORT", "",
                  "serve Prometheus metrics at GET /metrics here (no token: counts only; same "
                  "TLS and listen policy; keep the port internal)");
  std::vector<std::string> args(argv + 1, argv + argc);
  if (std::optional<int> exit = flags.ParseOrExit(args)) return *exit;
  if (flags.GetInt("threads") < 0) return flags.UsageError("--threads must be >= 0");
  if (flags.GetInt("query-slots") < 1) return flags.UsageError("--query-slots must be >= 1");
  if (flags.GetInt("query-queue") < 0) return flags.UsageError("--query-queue must be >= 0");
  if (flags.GetInt("caller-queries") < 0) return flags.UsageError("--caller-queries must be >= 0");
  if (flags.GetInt("max-batch-size") < 1) return flags.UsageError("--max-batch-size must be >= 1");
  if (flags.GetInt("batch-timeout-micros") < 0) {
    return flags.UsageError("--batch-timeout-micros must be >= 0");
  }
  if (flags.GetInt("job-quota") < 0) return flags.UsageError("--job-quota must be >= 0");
  if ((flags.GetString("index").empty() ? 0 : 1) + (flags.GetString("repository").empty() ? 0 : 1) +
          (flags.GetString("router").empty() ? 0 : 1) !=
      1) {
    return flags.UsageError(
        "give exactly one of --index DIR, --repository DIR or --router SHARDMAP");
  }
  if (flags.GetDouble("repository-poll-seconds") < 0) {
    return flags.UsageError("--repository-poll-seconds must be >= 0");
  }
  std::map<std::string, int64_t> pins;
  for (const std::string& pin : flags.GetRepeated("pin")) {
    if (absl::Status s = tda::ParsePin(pin, &pins); !s.ok()) {
      return flags.UsageError(std::string(s.message()));
    }
  }

  // Block the stop signals in every thread (gRPC's included); main waits for them below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  tda::InitCompute(static_cast<int>(flags.GetInt("threads")));
  tda::ReleaseArenaTopsOnFree();  // a server keeps less freed memory than training does
  tda::ServerOptions options;
  options.index_dir = flags.GetString("index");
  options.repository_dir = flags.GetString("repository");
  options.router_shard_map = flags.GetString("router");
  options.pins = pins;
  options.repository_poll_seconds = flags.GetDouble("repository-poll-seconds");
  options.listen = flags.GetString("listen");
  options.max_message_bytes = flags.GetInt("max-message-bytes");
  options.state_dir = flags.GetString("state-dir");
  options.data_root = flags.GetString("data-root");
  options.output_root = flags.GetString("output-root");
  options.query_slots = static_cast<int>(flags.GetInt("query-slots"));
  options.query_queue = static_cast<int>(flags.GetInt("query-queue"));
  options.caller_queries = static_cast<int>(flags.GetInt("caller-queries"));
  options.max_batch_size = flags.GetInt("max-batch-size");
  options.batch_timeout_micros = flags.GetInt("batch-timeout-micros");
  options.jobs.max_running = static_cast<int>(flags.GetInt("job-slots"));
  options.jobs.worker_threads = static_cast<int>(flags.GetInt("job-threads"));
  options.jobs.worker_nice = static_cast<int>(flags.GetInt("job-nice"));
  options.jobs.worker_binary = flags.GetString("job-worker");
  options.security.auth_tokens_file = flags.GetString("auth-tokens");
  options.security.tls_cert_file = flags.GetString("tls-cert");
  options.security.tls_key_file = flags.GetString("tls-key");
  options.security.tls_client_ca_file = flags.GetString("tls-client-ca");
  options.security.insecure = flags.GetBool("insecure");
  options.job_quota = flags.GetInt("job-quota");
  options.http_listen = flags.GetString("http-listen");
  options.metrics_listen = flags.GetString("metrics-listen");
  if (options.jobs.worker_binary.empty()) {
    options.jobs.worker_binary =
        (std::filesystem::read_symlink("/proc/self/exe").parent_path() / "tda-job-worker")
            .string();
  }
  absl::StatusOr<std::unique_ptr<tda::TdaServer>> server = tda::TdaServer::Start(options);
  if (!server.ok()) {
    std::cerr << "tda-server: error: " << server.status().message() << "\n";
    return 1;
  }
  std::cout << "tda-server listening on " << (*server)->address() << std::endl;
  if (!options.http_listen.empty()) {
    std::cout << "tda-server HTTP/JSON API on " << (*server)->http_scheme() << "://"
              << (*server)->http_address() << std::endl;
  }
  if (!options.metrics_listen.empty()) {
    std::cout << "tda-server metrics on " << (*server)->metrics_url() << std::endl;
  }

  int signal_number = 0;
  while (sigwait(&stop_signals, &signal_number) == 0 && signal_number == SIGHUP) {
    (*server)->RequestIndexReload();
    if (!options.security.tokens()) continue;
    absl::StatusOr<size_t> tokens = (*server)->ReloadTokens();
    if (tokens.ok()) {
      std::cerr << "tda-server: SIGHUP: reloaded " << *tokens << " token(s) from "
                << options.security.auth_tokens_file << "\n";
    } else {
      std::cerr << "tda-server: SIGHUP: keeping the previous tokens: "
                << tokens.status().message() << "\n";
    }
  }
  std::cerr << "tda-server: " << (signal_number == SIGINT ? "SIGINT" : "SIGTERM")
            << ", shutting down\n";
  (*server)->Shutdown(flags.GetDouble("shutdown-grace"));
  (*server)->Wait();
  std::cerr << "tda-server: stopped\n";
  return 0;
}
