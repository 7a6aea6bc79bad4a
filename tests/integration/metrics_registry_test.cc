// MetricsRegistry's text exposition (format 0.0.4) exactly: HELP and TYPE lines, label values
// escaped (backslash, quote, newline), histogram buckets cumulative with `le` inclusive and +Inf,
// counters from several threads, collected families read at each scrape.
#include "server/metrics_registry.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace tda {
namespace {

TEST(MetricsRegistry, ExpositionEscapesLabelsAndAccumulatesBuckets) {
  MetricsRegistry registry;
  Counter* calls = registry.AddCounter("t_calls_total", "Calls.\nSecond \\ line.", {"rpc"});
  Histogram* seconds = registry.AddHistogram("t_seconds", "Latency.", {"rpc"}, {0.5, 1});
  int scrapes = 0;
  registry.AddCollected("t_depth", "Depth.", MetricsRegistry::Type::kGauge, {}, [&scrapes] {
    return std::vector<CollectedSample>{{{}, static_cast<double>(++scrapes)}};
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([calls] {
      for (int i = 0; i < 1000; ++i) calls->Add({"a\"b\\c\nd"});
    });
  }
  for (std::thread& thread : threads) thread.join();
  seconds->Observe({"x"}, 0.5);  // on the bound: counted in le="0.5"
  seconds->Observe({"x"}, 0.75);
  seconds->Observe({"x"}, 3);
  EXPECT_EQ(registry.Exposition(),
            "# HELP t_calls_total Calls.\\nSecond \\\\ line.\n"
            "# TYPE t_calls_total counter\n"
            "t_calls_total{rpc=\"a\\\"b\\\\c\\nd\"} 4000\n"
            "# HELP t_seconds Latency.\n"
            "# TYPE t_seconds histogram\n"
            "t_seconds_bucket{rpc=\"x\",le=\"0.5\"} 1\n"
            "t_seconds_bucket{rpc=\"x\",le=\"1\"} 2\n"
            "t_seconds_bucket{rpc=\"x\",le=\"+Inf\"} 3\n"
            "t_seconds_sum{rpc=\"x\"} 4.25\n"
            "t_seconds_count{rpc=\"x\"} 3\n"
            "# HELP t_depth Depth.\n"
            "# TYPE t_depth gauge\n"
            "t_depth 1\n");
  EXPECT_NE(registry.Exposition().find("t_depth 2\n"), std::string::npos);  // read per scrape
}

}  // namespace
}  // namespace tda
