// Query latency and throughput through the real tda-server over loopback, with cross-request
// batching on and off (server/query_batcher.h), and a hot reload under load, in one run.
//   latency_bench --index DIR [--server BINARY] [--seconds S] [--top-k K]
//                 [--max-batch-size N] [--batch-timeout-micros U] [--in-process-only 1]
//                 [--ensemble-members K]
// DIR is an index (or an ensemble index, queried with its first K members: 0 = all) (scripts/bench
// uses the 60,000-row Fashion-MNIST index of scripts/demo). It is copied into a fresh repository as
// version 1 of index "bench". Two servers are started on 127.0.0.1:0: one with
// --batch-timeout-micros 0 (batching off), one with the given batching flags (default: the
// server's, 32 queries, 2 ms, closing early once as many callers as recent batches had are in).
// Against each, 1, 8 and 32 concurrent clients (one channel each) send single-query Attribute calls
// (test images 0, 1, 2, ...) back to back for S seconds (default 4); an in-process Attributor
// answering the same calls from 1 and 8 threads, and calls of 8 queries (what one batch can gain),
// is the baseline. Printed: p50 / p99 latency and throughput (queries/s) per configuration,
// 8-client p99 / 1-client p99, and throughput batching on / off. Reload under load: a copy of DIR
// is staged under a hidden name; 8 clients against the batching server; after S seconds the copy is
// renamed in as version 2 and the server gets SIGHUP; the swap lasts until DescribeIndex reports
// version 2, plus one second; the clients go on for S more seconds. Printed: failed calls, and
// the p99 of the calls started during the swap against the p99 of those before it.
#include <signal.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "attribution/attributor.h"
#include "client/remote_attributor.h"
#include "tests/integration/child_process.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

void Check(const absl::Status& status) {
  if (!status.ok()) {
    std::fprintf(stderr, "latency_bench: %s\n", status.ToString().c_str());
    std::exit(1);
  }
}

double SecondsSince(Clock::time_point origin, Clock::time_point t) {
  return std::chrono::duration<double>(t - origin).count();
}

// One call: when it started (seconds since the load began), how long it took, its status.
struct CallRecord {
  double start_s = 0, ms = 0;
  absl::Status status;
};

// p50 / p99 of the calls whose start lies in [from_s, to_s).
struct Percentiles {
  double p50 = 0, p99 = 0;
  size_t calls = 0;
};
Percentiles Of(const std::vector<CallRecord>& records, double from_s = 0, double to_s = 1e30) {
  std::vector<double> ms;
  for (const CallRecord& r : records) {
    if (r.start_s >= from_s && r.start_s < to_s) ms.push_back(r.ms);
  }
  if (ms.empty()) return {};
  std::sort(ms.begin(), ms.end());
  auto at = [&](double q) {
    return ms[std::min(ms.size() - 1, static_cast<size_t>(q * static_cast<double>(ms.size())))];
  };
  return {at(0.5), at(0.99), ms.size()};
}

// Answers one query id; one per client thread.
using Caller = std::function<absl::Status(const std::string& id)>;

// `clients` threads calling back to back (client c sends test images c, c + clients, ...)
// until Stop.
class Load {
 public:
  Load(int clients, const std::function<Caller(int)>& make_caller) : origin_(Clock::now()) {
    per_client_.resize(static_cast<size_t>(clients));
    for (int c = 0; c < clients; ++c) {
      threads_.emplace_back([this, c, clients, caller = make_caller(c)] {
        for (int i = c; !stop_.load(); i += clients) {
          const Clock::time_point t = Clock::now();
          CallRecord record;
          record.status = caller(absl::StrCat("fashion-mnist/test/", i % 10000));
          record.start_s = SecondsSince(origin_, t);
          record.ms = 1e3 * SecondsSince(t, Clock::now());
          per_client_[c].push_back(std::move(record));
        }
      });
    }
  }
  // Stops the clients after their calls in flight; returns every call and the seconds it ran.
  std::vector<CallRecord> Stop(double* elapsed_s) {
    stop_.store(true);
    for (std::thread& t : threads_) t.join();
    *elapsed_s = SecondsSince(origin_, Clock::now());
    std::vector<CallRecord> all;
    for (auto& calls : per_client_) all.insert(all.end(), calls.begin(), calls.end());
    return all;
  }
  Clock::time_point origin() const { return origin_; }

 private:
  const Clock::time_point origin_;
  std::atomic<bool> stop_{false};
  std::vector<std::vector<CallRecord>> per_client_;
  std::vector<std::thread> threads_;
};

struct Figures {
  Percentiles latency;
  double queries_per_second = 0;
  size_t failed = 0;
};

Figures Measure(int clients, double seconds, const std::function<Caller(int)>& make_caller) {
  Load load(clients, make_caller);
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  double elapsed = 0;
  const std::vector<CallRecord> calls = load.Stop(&elapsed);
  Figures f;
  f.latency = Of(calls);
  for (const CallRecord& c : calls) f.failed += c.status.ok() ? 0 : 1;
  f.queries_per_second = static_cast<double>(calls.size() - f.failed) / elapsed;
  return f;
}

void Print(const char* what, int clients, const Figures& f) {
  std::printf("%-13s %2d client%s  p50 %7.1f ms  p99 %7.1f ms  %7.1f queries/s%s\n", what, clients,
              clients == 1 ? " " : "s", f.latency.p50, f.latency.p99, f.queries_per_second,
              f.failed > 0 ? absl::StrCat("  (", f.failed, " failed)").c_str() : "");
}

// Copies `index_dir` to REPOSITORY/NAME/VERSION the way an operator should: under a hidden
// name first (StageVersion), then renamed in (PublishVersion), so a polling server never sees
// half a version.
fs::path StageVersion(const fs::path& repository, int version, const std::string& index_dir) {
  const fs::path incoming = repository / "bench" / absl::StrCat(".incoming-", version);
  std::error_code error;
  fs::create_directories(incoming.parent_path(), error);
  if (!error) fs::copy(index_dir, incoming, fs::copy_options::recursive, error);
  if (error) Check(absl::InternalError(absl::StrCat("cannot copy version ", version, ": ",
                                                    error.message())));
  return incoming;
}

void PublishVersion(const fs::path& staged, int version) {
  std::error_code error;
  fs::rename(staged, staged.parent_path() / absl::StrCat(version), error);
  if (error) Check(absl::InternalError(absl::StrCat("cannot add version ", version, ": ",
                                                    error.message())));
}

// tda-server on 127.0.0.1:0 serving `repository` (rescanned on SIGHUP only) with `flags`.
std::unique_ptr<tda::testing::ChildProcess> StartServer(const std::string& binary,
                                                        const fs::path& repository,
                                                        const std::vector<std::string>& flags,
                                                        std::string* address) {
  std::vector<std::string> argv = {binary,     "--repository", repository.string(),
                                   "--listen", "127.0.0.1:0",  "--repository-poll-seconds",
                                   "0"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  auto child = tda::testing::ChildProcess::Start(argv);
  Check(child.status());
  auto line = (*child)->ReadLineContaining("tda-server listening on ", 300);
  Check(line.status());
  *address = line->substr(line->rfind(' ') + 1);
  return std::move(*child);
}

std::function<Caller(int)> RemoteCallers(const std::string& address,
                                         const tda::AttributeOptions& options) {
  return [address, options](int) -> Caller {
    auto remote = tda::RemoteAttributor::Connect(address);
    Check(remote.status());
    std::shared_ptr<tda::RemoteAttributor> client = std::move(*remote);
    return [client, options](const std::string& id) {
      return client->Attribute({tda::Query{id, {}, -1, {}}}, options).status();
    };
  };
}

void Stop(tda::testing::ChildProcess* server) {
  server->Signal(SIGTERM);
  Check(server->Wait(60).status());
}

struct CallSplit {
  double prepare_p50 = 0, score_p50 = 0;  // ms
  int calls = 0;
};

// Calls of `queries` queries made one after another for `seconds`, each timed in its two halves:
// Attributor::PrepareQueries and Attributor::ScoreQueries.
CallSplit SplitCall(const tda::Attributor& attributor, const tda::AttributeOptions& options,
                    int queries, double seconds) {
  std::vector<double> prepare, score;
  const Clock::time_point end =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  for (int call = 0; Clock::now() < end; ++call) {
    std::vector<tda::Query> batch;
    for (int q = 0; q < queries; ++q) {
      batch.push_back(tda::Query{absl::StrCat("fashion-mnist/test/", call * queries + q), {}, -1, {}});
    }
    const Clock::time_point t0 = Clock::now();
    auto prepared = attributor.PrepareQueries(batch, options);
    Check(prepared.status());
    const Clock::time_point t1 = Clock::now();
    Check(attributor.ScoreQueries(prepared->preconditioned, options, &prepared->results));
    prepare.push_back(1e3 * SecondsSince(t0, t1));
    score.push_back(1e3 * SecondsSince(t1, Clock::now()));
  }
  CallSplit split;
  split.calls = static_cast<int>(prepare.size());
  std::sort(prepare.begin(), prepare.end());
  std::sort(score.begin(), score.end());
  split.prepare_p50 = prepare[prepare.size() / 2];
  split.score_p50 = score[score.size() / 2];
  return split;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // each figure as soon as it is measured
  std::string index_dir, server = TDA_SERVER_BINARY;
  double seconds = 4;
  bool in_process_only = false;
  std::vector<std::string> batching_flags;
  tda::AttributeOptions options;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--index")) index_dir = argv[i + 1];
    if (!std::strcmp(argv[i], "--server")) server = argv[i + 1];
    if (!std::strcmp(argv[i], "--seconds")) seconds = std::atof(argv[i + 1]);
    if (!std::strcmp(argv[i], "--top-k")) options.top_k = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--in-process-only")) in_process_only = std::atoi(argv[i + 1]) != 0;
    if (!std::strcmp(argv[i], "--ensemble-members")) {
      options.ensemble_members = std::atoi(argv[i + 1]);
    }
    if (!std::strcmp(argv[i], "--max-batch-size") ||
        !std::strcmp(argv[i], "--batch-timeout-micros")) {
      batching_flags.insert(batching_flags.end(), {argv[i], argv[i + 1]});
    }
  }
  if (index_dir.empty() || !(seconds > 0)) {
    std::fprintf(stderr,
                 "usage: latency_bench --index DIR [--server BINARY] [--seconds S] [--top-k K]"
                 " [--max-batch-size N] [--batch-timeout-micros U] [--in-process-only 1]"
                 " [--ensemble-members K]\n");
    return 2;
  }
  auto offline = tda::Attributor::Open(index_dir);
  Check(offline.status());
  const tda::Attributor& attributor = **offline;
  char repository_template[] = "/tmp/latency_bench-XXXXXX";
  if (mkdtemp(repository_template) == nullptr) Check(absl::InternalError("mkdtemp failed"));
  const fs::path repository = repository_template;
  PublishVersion(StageVersion(repository, 1, index_dir), 1);
  std::printf(
      "index %s: %lld rows x %lld dims %s; single-query calls, top-%lld, %.0f s each;"
      " %u hardware threads, load average at start: %s\n",
      index_dir.c_str(), static_cast<long long>(attributor.index().rows()),
      static_cast<long long>(attributor.index().dim()),
      tda::RowDTypeName(attributor.index().dtype()), static_cast<long long>(options.top_k), seconds,
      std::thread::hardware_concurrency(),
      [] {
        double load[1] = {0};
        return getloadavg(load, 1) == 1 ? absl::StrCat(load[0]) : std::string("?");
      }()
          .c_str());

  const std::function<Caller(int)> local = [&](int) -> Caller {
    return [&](const std::string& id) {
      return attributor.Attribute({tda::Query{id, {}, -1, {}}}, options).status();
    };
  };
  Measure(1, 0.5, local);  // warm up: pages, data set loading
  Print("in-process", 1, Measure(1, seconds, local));
  Print("in-process", 8, Measure(8, seconds, local));
  // What batching can gain at best: one call of 8 queries (one scan) against 8 calls of one.
  const std::function<Caller(int)> local_eight = [&](int) -> Caller {
    return [&](const std::string& id) {
      const std::vector<tda::Query> eight(8, tda::Query{id, {}, -1, {}});
      return attributor.Attribute(eight, options).status();
    };
  };
  Figures eight = Measure(1, seconds, local_eight);
  eight.queries_per_second *= 8;
  std::printf("in-process, calls of 8 queries: p50 %.1f ms per call, %.1f queries/s\n",
              eight.latency.p50, eight.queries_per_second);
  // Where a call's time goes: its query gradients (forward, backward, projection,
  // preconditioning) against its scan, for calls of 1 and of 8 queries.
  for (const int queries : {1, 8}) {
    const CallSplit split = SplitCall(attributor, options, queries, seconds / 2);
    std::printf(
        "in-process, calls of %d: query gradients p50 %.2f ms, scan + hits p50 %.2f ms (%d calls)\n",
        queries, split.prepare_p50, split.score_p50, split.calls);
  }
  if (in_process_only) {
    std::error_code ignored;
    fs::remove_all(repository, ignored);  // the bench's own temporary copy
    return 0;
  }

  const std::vector<int> client_counts = {1, 8, 32};
  std::vector<Figures> off, on;
  std::string address;
  {
    auto child = StartServer(server, repository, {"--batch-timeout-micros", "0"}, &address);
    Measure(1, 0.5, RemoteCallers(address, options));
    for (int clients : client_counts) {
      off.push_back(Measure(clients, seconds, RemoteCallers(address, options)));
      Print("batching off", clients, off.back());
    }
    Stop(child.get());
  }
  auto child = StartServer(server, repository, batching_flags, &address);
  Measure(1, 0.5, RemoteCallers(address, options));
  for (int clients : client_counts) {
    on.push_back(Measure(clients, seconds, RemoteCallers(address, options)));
    Print("batching on", clients, on.back());
  }
  std::printf("8-client p99 / 1-client p99: batching on %.2f (goal <= 2), off %.2f\n",
              on[1].latency.p99 / on[0].latency.p99, off[1].latency.p99 / off[0].latency.p99);
  std::printf(
      "throughput batching on / off: 8 clients %.2f (goal >= 4), 32 clients %.2f,"
      " 1 client %.2f\n",
      on[1].queries_per_second / off[1].queries_per_second,
      on[2].queries_per_second / off[2].queries_per_second,
      on[0].queries_per_second / off[0].queries_per_second);

  // Reload under 8-client load. The copy is staged before the load starts: the swap window
  // measures the server (rename, SIGHUP, open, full verification, swap), not the copy.
  auto describe = tda::RemoteAttributor::Connect(address);
  Check(describe.status());
  const fs::path staged = StageVersion(repository, 2, index_dir);
  Load load(8, RemoteCallers(address, options));
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  const double swap_begin = SecondsSince(load.origin(), Clock::now());
  PublishVersion(staged, 2);
  child->Signal(SIGHUP);
  while (true) {
    absl::StatusOr<tda::v1::DescribeIndexResponse> d = (*describe)->Describe();
    if (d.ok() && d->version() == 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const double served = SecondsSince(load.origin(), Clock::now());
  std::this_thread::sleep_for(std::chrono::duration<double>(1.0 + seconds));
  double elapsed = 0;
  const std::vector<CallRecord> calls = load.Stop(&elapsed);
  size_t failed = 0;
  for (const CallRecord& c : calls) {
    if (c.status.ok()) continue;
    if (failed++ == 0) std::printf("first failed call: %s\n", c.status.ToString().c_str());
  }
  const Percentiles steady = Of(calls, 0, swap_begin);
  const Percentiles swap = Of(calls, swap_begin, served + 1.0);
  const Percentiles after = Of(calls, served + 1.0);
  std::printf(
      "reload under 8 clients: %zu calls, %zu failed (goal 0); rename + SIGHUP to version 2"
      " served in %.2f s\n",
      calls.size(), failed, served - swap_begin);
  std::printf(
      "  p99 steady %.1f ms (%zu calls), during the swap %.1f ms (%zu calls), after"
      " %.1f ms; swap / steady %.2f (goal <= 2)\n",
      steady.p99, steady.calls, swap.p99, swap.calls, after.p99, swap.p99 / steady.p99);
  Stop(child.get());
  std::error_code ignored;
  fs::remove_all(repository, ignored);  // the bench's own temporary copy
  return failed == 0 ? 0 : 1;
}
