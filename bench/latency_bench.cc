// Query latency through the real tda-server over loopback, against the in-process Attributor
// answering the same queries in the same run.
//   latency_bench --index DIR [--server BINARY] [--requests 200] [--top-k 10]
// Starts BINARY (default: the tda-server built beside this bench) on 127.0.0.1:0 serving DIR
// (scripts/bench uses the 60,000-row Fashion-MNIST index of scripts/demo), then sends
// single-query Attribute requests (test images 0, 1, 2, ...) from 1 client and from 8 concurrent
// clients (8 channels, --requests in all), and the same queries to an in-process Attributor from
// 1 and 8 threads. Prints p50 / p99 and each ratio remote / in-process.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "attribution/attributor.h"
#include "client/remote_attributor.h"
#include "tests/integration/child_process.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Percentiles {
  double p50 = 0, p99 = 0;
};

Percentiles Of(std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  auto at = [&](double q) {
    return ms[std::min(ms.size() - 1, static_cast<size_t>(q * static_cast<double>(ms.size())))];
  };
  return {at(0.5), at(0.99)};
}

// Runs `requests` single-query calls spread over `clients` threads; returns each call's ms.
// `make_caller(c)` gives thread c its function answering one query id.
template <typename MakeCaller>
std::vector<double> Measure(int clients, int requests, MakeCaller make_caller) {
  std::vector<std::vector<double>> per_client(static_cast<size_t>(clients));
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      auto call = make_caller(c);
      for (int i = c; i < requests; i += clients) {
        const auto t = Clock::now();
        call(absl::StrCat("fashion-mnist/test/", i));
        per_client[c].push_back(std::chrono::duration<double, std::milli>(Clock::now() - t).count());
      }
    });
  }
  for (std::thread& t : threads) t.join();
  std::vector<double> all;
  for (const auto& v : per_client) all.insert(all.end(), v.begin(), v.end());
  return all;
}

void Check(const absl::Status& status) {
  if (!status.ok()) {
    std::fprintf(stderr, "latency_bench: %s\n", status.ToString().c_str());
    std::exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string index_dir, server = TDA_SERVER_BINARY;
  int requests = 200;
  tda::AttributeOptions options;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--index")) index_dir = argv[i + 1];
    if (!std::strcmp(argv[i], "--server")) server = argv[i + 1];
    if (!std::strcmp(argv[i], "--requests")) requests = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--top-k")) options.top_k = std::atoi(argv[i + 1]);
  }
  if (index_dir.empty() || requests < 8) {
    std::fprintf(stderr, "usage: latency_bench --index DIR [--server BINARY] [--requests N>=8]\n");
    return 2;
  }
  auto offline = tda::Attributor::Open(index_dir);
  Check(offline.status());
  const tda::Attributor& attributor = **offline;
  auto child = tda::testing::ChildProcess::Start(
      {server, "--index", index_dir, "--listen", "127.0.0.1:0"});
  Check(child.status());
  auto line = (*child)->ReadLineContaining("tda-server listening on ", 300);
  Check(line.status());
  const std::string address = line->substr(line->rfind(' ') + 1);
  std::printf("index %s: %lld rows x %lld dims %s; server %s; %d requests of 1 query, top-%lld\n",
              index_dir.c_str(), static_cast<long long>(attributor.index().rows()),
              static_cast<long long>(attributor.index().dim()),
              tda::RowDTypeName(attributor.index().dtype()), address.c_str(), requests,
              static_cast<long long>(options.top_k));

  auto remote_caller = [&](int) {
    auto remote = tda::RemoteAttributor::Connect(address);
    Check(remote.status());
    std::shared_ptr<tda::RemoteAttributor> client = std::move(*remote);
    return [client, &options](const std::string& id) {
      Check(client->Attribute({tda::Query{id, {}, -1, {}}}, options).status());
    };
  };
  auto local_caller = [&](int) {
    return [&](const std::string& id) {
      Check(attributor.Attribute({tda::Query{id, {}, -1, {}}}, options).status());
    };
  };
  Measure(1, 8, remote_caller);  // warm up both paths (pages, channels, data set loading)
  Measure(1, 8, local_caller);
  for (int clients : {1, 8}) {
    const Percentiles remote = Of(Measure(clients, requests, remote_caller));
    const Percentiles local = Of(Measure(clients, requests, local_caller));
    std::printf(
        "%d client%s: server p50 %7.1f ms  p99 %7.1f ms | in-process p50 %7.1f ms  p99 %7.1f ms"
        " | ratio p50 %.2f  p99 %.2f\n",
        clients, clients == 1 ? " " : "s", remote.p50, remote.p99, local.p50, local.p99,
        remote.p50 / local.p50, remote.p99 / local.p99);
  }
  (*child)->Signal(SIGTERM);
  Check((*child)->Wait(30).status());
  return 0;
}
