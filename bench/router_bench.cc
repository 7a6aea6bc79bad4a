// The router's overhead: single-query Attribute latency of one tda-server holding the whole
// index against tda-server --router over 1, 2 and 4 local shard servers of the same index (cut
// by SplitIndex, as `tda index split` does), all on this machine over loopback.
//   router_bench --index DIR --work DIR [--requests 100] [--top-k 10] [--shards 1,2,4]
// DIR is the 60,000-row Fashion-MNIST index of scripts/demo (demo-out/index); --work is a new
// or empty scratch directory for the shards (DIR/shards-K). Each server runs with --threads
// equal to the cores divided among the servers of the configuration, so every configuration
// uses the same cores. Prints p50 / p99 per configuration and the ratio to the whole index,
// which is measured first and again last (the load of a shared machine drifts).
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/remote_attributor.h"
#include "common/atomic_file.h"
#include "index/index_split.h"
#include "index/shard_map.h"
#include "tests/integration/child_process.h"

namespace {

using Clock = std::chrono::steady_clock;
using tda::testing::ChildProcess;

void Check(const absl::Status& status) {
  if (!status.ok()) {
    std::fprintf(stderr, "router_bench: %s\n", status.ToString().c_str());
    std::exit(1);
  }
}

std::unique_ptr<ChildProcess> StartServer(const std::vector<std::string>& what, int threads,
                                          std::string* address) {
  std::vector<std::string> argv = {TDA_SERVER_BINARY, "--listen", "127.0.0.1:0", "--threads",
                                   absl::StrCat(threads)};
  argv.insert(argv.end(), what.begin(), what.end());
  auto child = ChildProcess::Start(argv);
  Check(child.status());
  auto line = (*child)->ReadLineContaining("tda-server listening on ", 300);
  Check(line.status());
  *address = line->substr(line->rfind(' ') + 1);
  return std::move(*child);
}

void Stop(std::unique_ptr<ChildProcess> child) {
  child->Signal(SIGTERM);
  Check(child->Wait(30).status());
}

struct Percentiles {
  double p50 = 0, p99 = 0;
};

// `requests` single-query calls (test images 0, 1, ...) after 8 warm-up calls.
Percentiles Measure(const std::string& address, int requests,
                    const tda::AttributeOptions& options) {
  auto remote = tda::RemoteAttributor::Connect(address);
  Check(remote.status());
  std::vector<double> ms;
  for (int i = -8; i < requests; ++i) {
    const auto t = Clock::now();
    const std::string id = absl::StrCat("fashion-mnist/test/", std::max(i, 0));
    Check((*remote)->Attribute({tda::Query{id, {}, -1, {}}}, options).status());
    if (i >= 0) ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t).count());
  }
  std::sort(ms.begin(), ms.end());
  auto at = [&](double q) {
    return ms[std::min(ms.size() - 1, static_cast<size_t>(q * static_cast<double>(ms.size())))];
  };
  return {at(0.5), at(0.99)};
}

}  // namespace

int main(int argc, char** argv) {
  std::string index_dir, work_dir, shard_list = "1,2,4";
  int requests = 100;
  tda::AttributeOptions options;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--index")) index_dir = argv[i + 1];
    if (!std::strcmp(argv[i], "--work")) work_dir = argv[i + 1];
    if (!std::strcmp(argv[i], "--requests")) requests = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--top-k")) options.top_k = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--shards")) shard_list = argv[i + 1];
  }
  if (index_dir.empty() || work_dir.empty() || requests < 1) {
    std::fprintf(stderr,
                 "usage: router_bench --index DIR --work DIR [--requests N] [--top-k K] "
                 "[--shards 1,2,4]\n");
    return 2;
  }
  const int cores = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  std::string address;
  auto whole = StartServer({"--index", index_dir}, cores, &address);
  const Percentiles baseline = Measure(address, requests, options);
  Stop(std::move(whole));
  std::printf("index %s; %d requests of 1 query, top-%lld, %d cores\n", index_dir.c_str(), requests,
              static_cast<long long>(options.top_k), cores);
  std::printf("%-28s %10s %10s %10s %10s\n", "configuration", "p50 ms", "p99 ms", "p50 ratio",
              "p99 ratio");
  std::printf("%-28s %10.1f %10.1f %10.2f %10.2f\n", "1 server, whole index", baseline.p50,
              baseline.p99, 1.0, 1.0);
  for (absl::string_view k_text : absl::StrSplit(shard_list, ',')) {
    int shards = 0;
    if (!absl::SimpleAtoi(k_text, &shards) || shards < 1) {
      std::fprintf(stderr, "router_bench: bad --shards entry '%s'\n", std::string(k_text).c_str());
      return 2;
    }
    const std::string out = absl::StrCat(work_dir, "/shards-", shards);
    auto split = tda::SplitIndex(index_dir, shards, out);
    Check(split.status());
    auto map = tda::ReadShardMap(split->shard_map_path);
    Check(map.status());
    // The shards share the cores; the router's own gradient step gets them all.
    const int threads = std::max(1, cores / shards);
    std::vector<std::unique_ptr<ChildProcess>> servers;
    for (int i = 0; i < shards; ++i) {
      servers.push_back(
          StartServer({"--index", split->shards[i].dir}, threads, &map->shards[i].address));
    }
    Check(tda::WriteFileAtomically(split->shard_map_path, tda::ShardMapToJson(*map)));
    auto router = StartServer({"--router", split->shard_map_path}, cores, &address);
    const Percentiles routed = Measure(address, requests, options);
    std::printf("%-28s %10.1f %10.1f %10.2f %10.2f\n",
                absl::StrCat("router over ", shards, " shard", shards == 1 ? "" : "s").c_str(),
                routed.p50, routed.p99, routed.p50 / baseline.p50, routed.p99 / baseline.p99);
    std::fflush(stdout);
    Stop(std::move(router));
    for (auto& server : servers) Stop(std::move(server));
  }
  // Again at the end: on a shared machine the load drifts during the run.
  whole = StartServer({"--index", index_dir}, cores, &address);
  const Percentiles again = Measure(address, requests, options);
  Stop(std::move(whole));
  std::printf("%-28s %10.1f %10.1f %10.2f %10.2f\n", "1 server, whole index, again", again.p50,
              again.p99, again.p50 / baseline.p50, again.p99 / baseline.p99);
  return 0;
}
