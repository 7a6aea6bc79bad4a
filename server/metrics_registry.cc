#include "server/metrics_registry.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"

namespace tda {
namespace {

// Integers exactly (counts and bytes up to 2^53), others with round-trip precision.
std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::floor(value) && std::fabs(value) < 9007199254740992.0) {
    return absl::StrCat(static_cast<int64_t>(value));
  }
  char text[32];
  for (int precision = 15; precision < 17; ++precision) {  // the shortest that reads back
    std::snprintf(text, sizeof(text), "%.*g", precision, value);
    if (std::strtod(text, nullptr) == value) return text;
  }
  std::snprintf(text, sizeof(text), "%.17g", value);
  return text;
}

std::string EscapeHelp(const std::string& help) {
  std::string escaped;
  for (char c : help) {
    if (c == '\\') {
      escaped += "\\\\";
    } else if (c == '\n') {
      escaped += "\\n";
    } else {
      escaped += c;
    }
  }
  return escaped;
}

// {a="x",b="y"} (empty without labels); `extra` is appended last (a histogram's le).
std::string LabelSet(const std::vector<std::string>& names, const LabelValues& values,
                     const std::string& extra = "") {
  std::string text;
  for (size_t i = 0; i < names.size() && i < values.size(); ++i) {
    absl::StrAppend(&text, text.empty() ? "" : ",", names[i], "=\"", EscapeLabelValue(values[i]),
                    "\"");
  }
  if (!extra.empty()) absl::StrAppend(&text, text.empty() ? "" : ",", extra);
  return text.empty() ? "" : absl::StrCat("{", text, "}");
}

}  // namespace

std::string EscapeLabelValue(const std::string& value) {
  std::string escaped;
  for (char c : value) {
    if (c == '\\') {
      escaped += "\\\\";
    } else if (c == '"') {
      escaped += "\\\"";
    } else if (c == '\n') {
      escaped += "\\n";
    } else {
      escaped += c;
    }
  }
  return escaped;
}

void Counter::Add(const LabelValues& labels, double delta) {
  std::lock_guard<std::mutex> lock(mu_);
  values_[labels] += delta;
}

double Counter::Value(const LabelValues& labels) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = values_.find(labels);
  return it == values_.end() ? 0 : it->second;
}

void Histogram::Observe(const LabelValues& labels, double value) {
  const size_t bucket =
      std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();  // le: <=
  std::lock_guard<std::mutex> lock(mu_);
  Series& series = series_[labels];
  if (series.buckets.empty()) series.buckets.assign(bounds_.size() + 1, 0);
  ++series.buckets[bucket];
  series.sum += value;
  ++series.count;
}

MetricsRegistry::Family& MetricsRegistry::Add(std::string name, std::string help, std::string type,
                                              std::vector<std::string> label_names) {
  auto family = std::make_unique<Family>();
  family->name = std::move(name);
  family->help = std::move(help);
  family->type = std::move(type);
  family->label_names = std::move(label_names);
  families_.push_back(std::move(family));
  return *families_.back();
}

Counter* MetricsRegistry::AddCounter(std::string name, std::string help,
                                     std::vector<std::string> label_names) {
  Family& family = Add(std::move(name), std::move(help), "counter", std::move(label_names));
  family.counter = std::make_unique<Counter>();
  return family.counter.get();
}

Histogram* MetricsRegistry::AddHistogram(std::string name, std::string help,
                                         std::vector<std::string> label_names,
                                         std::vector<double> bounds) {
  std::sort(bounds.begin(), bounds.end());
  Family& family = Add(std::move(name), std::move(help), "histogram", std::move(label_names));
  family.histogram = std::make_unique<Histogram>(std::move(bounds));
  return family.histogram.get();
}

void MetricsRegistry::AddCollected(std::string name, std::string help, Type type,
                                   std::vector<std::string> label_names,
                                   std::function<std::vector<CollectedSample>()> collect) {
  Family& family = Add(std::move(name), std::move(help),
                       type == Type::kCounter ? "counter" : "gauge", std::move(label_names));
  family.collect = std::move(collect);
}

std::string MetricsRegistry::Exposition() const {
  std::string text;
  for (const std::unique_ptr<Family>& family : families_) {
    const std::string& name = family->name;
    absl::StrAppend(&text, "# HELP ", name, " ", EscapeHelp(family->help), "\n# TYPE ", name, " ",
                    family->type, "\n");
    if (family->counter != nullptr) {
      std::lock_guard<std::mutex> lock(family->counter->mu_);
      for (const auto& [labels, value] : family->counter->values_) {
        absl::StrAppend(&text, name, LabelSet(family->label_names, labels), " ", FormatValue(value),
                        "\n");
      }
    } else if (family->histogram != nullptr) {
      const Histogram& histogram = *family->histogram;
      std::lock_guard<std::mutex> lock(histogram.mu_);
      for (const auto& [labels, series] : histogram.series_) {
        int64_t cumulative = 0;
        for (size_t i = 0; i < series.buckets.size(); ++i) {
          cumulative += series.buckets[i];
          const std::string le = i < histogram.bounds_.size() ? FormatValue(histogram.bounds_[i])
                                                              : std::string("+Inf");
          absl::StrAppend(&text, name, "_bucket",
                          LabelSet(family->label_names, labels, absl::StrCat("le=\"", le, "\"")),
                          " ", cumulative, "\n");
        }
        const std::string label_set = LabelSet(family->label_names, labels);
        absl::StrAppend(&text, name, "_sum", label_set, " ", FormatValue(series.sum), "\n", name,
                        "_count", label_set, " ", series.count, "\n");
      }
    } else {
      std::vector<CollectedSample> samples = family->collect();
      std::sort(samples.begin(), samples.end(),
                [](const auto& a, const auto& b) { return a.labels < b.labels; });
      for (const CollectedSample& sample : samples) {
        absl::StrAppend(&text, name, LabelSet(family->label_names, sample.labels), " ",
                        FormatValue(sample.value), "\n");
      }
    }
  }
  return text;
}

}  // namespace tda
