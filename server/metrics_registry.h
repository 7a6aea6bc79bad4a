// A small Prometheus metrics registry and its text exposition (format 0.0.4). Debian 12 has no
// prometheus-cpp package, so the registry and the format are tda's own, kept to what tda-server
// needs: counters and histograms recorded as events happen, and families whose samples are read
// at scrape time (gauges such as queue depth, or counters kept by another part).
//
// A family has a name, a HELP text and label names; its samples are keyed by label values (one
// value per label name, in order). Exposition writes the families in registration order, each
// with its HELP and TYPE lines, samples sorted by label values; label values and HELP text are
// escaped as the format says (backslash, double quote, newline).
//
// Usage: register every family first (Add*), then record from any thread and scrape.
// Thread-safety: Add* before other threads use the registry; Counter, Histogram and
// Exposition are safe from any thread. The registry owns its families.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace tda {

using LabelValues = std::vector<std::string>;

// A monotonically increasing count per label values.
class Counter {
 public:
  void Add(const LabelValues& labels, double delta = 1);
  // The value for `labels` (0 if never added to); for tests and collectors.
  double Value(const LabelValues& labels) const;

 private:
  friend class MetricsRegistry;
  mutable std::mutex mu_;
  std::map<LabelValues, double> values_;
};

// Observations counted into cumulative buckets (upper bounds, ascending, +Inf implied), with
// their sum and count.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)) {}
  void Observe(const LabelValues& labels, double value);

 private:
  friend class MetricsRegistry;
  struct Series {
    std::vector<int64_t> buckets;  // per bound, not cumulative; the last is +Inf
    double sum = 0;
    int64_t count = 0;
  };
  const std::vector<double> bounds_;
  mutable std::mutex mu_;
  std::map<LabelValues, Series> series_;
};

struct CollectedSample {
  LabelValues labels;
  double value = 0;
};

class MetricsRegistry {
 public:
  enum class Type { kCounter, kGauge };

  Counter* AddCounter(std::string name, std::string help, std::vector<std::string> label_names);
  Histogram* AddHistogram(std::string name, std::string help, std::vector<std::string> label_names,
                          std::vector<double> bounds);
  // A family whose samples `collect` returns at each scrape (it runs on the scraping thread).
  void AddCollected(std::string name, std::string help, Type type,
                    std::vector<std::string> label_names,
                    std::function<std::vector<CollectedSample>()> collect);

  // The text exposition of every family (Content-Type kContentType).
  std::string Exposition() const;
  static constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

 private:
  struct Family {
    std::string name, help, type;
    std::vector<std::string> label_names;
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Histogram> histogram;
    std::function<std::vector<CollectedSample>()> collect;
  };
  Family& Add(std::string name, std::string help, std::string type,
              std::vector<std::string> label_names);
  std::vector<std::unique_ptr<Family>> families_;
};

// Label values escaped for the text format: \ -> \\, " -> \", newline -> \n.
std::string EscapeLabelValue(const std::string& value);

}  // namespace tda
