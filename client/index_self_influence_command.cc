// tda index self-influence: every training sample's influence on itself, g^T (H + lambda I)^-1 g,
// listing the samples the model memorised most (duplicates, outliers, mislabelled images).
#include <algorithm>
#include <iostream>
#include <numeric>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "attribution/attributor.h"
#include "client/commands.h"
#include "common/flags.h"
#include "client/json_string.h"
#include "client/progress_bar.h"
#include "common/npy.h"
#include "model/model.h"

namespace tda {
namespace {

// The value at quantile q of sorted values (nearest rank).
double Quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const size_t k = static_cast<size_t>(q * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(k, sorted.size() - 1)];
}

}  // namespace

int RunIndexSelfInfluence(const Args& args) {
  FlagParser flags(
      "tda index self-influence",
      "--index DIR [--top N] [--method M] [--by-document] [--json] [--out FILE.npy]",
      "Computes the self-influence g_i^T (H + lambda I)^-1 g_i of every training sample in the\n"
      "index and lists the highest: the samples the model fits by memorising them (unique\n"
      "oddities, outliers, mislabelled images). Removing one changes its own loss the most.\n"
      "A document repeated several times ranks lower: its copies explain each other.\n"
      "With --by-document, a long document of a chunking model (rows <document id>#<k>) is\n"
      "ranked as one: g is then the sum of its chunks' stored gradients, the gradient of the\n"
      "whole document's loss (exact in the index's projected space; not the sum of the\n"
      "chunks' self-influences, which would miss their cross terms).");
  flags.AddRequiredString("index", "DIR", "index directory written by 'tda index build'");
  flags.AddInt("top", "N", 20, "how many samples to list (highest self-influence first)");
  flags.AddString("method", "M", "ekfac", "ekfac | kfac | gradient-dot (or exact | lissa on "
                  "an index of full gradients)");
  flags.AddDouble("damping", "X", 0.1, "damping lambda = X x mean eigenvalue per layer");
  flags.AddBool("json", "print {\"rows\", \"median\", \"p99\", \"top\": [...]} as JSON");
  flags.AddString("out", "FILE.npy", "",
                  "also write every row's value (index order; --by-document: every document's, "
                  "in order of first appearance) as .npy");
  flags.AddBool("by-document", "rank documents (the sum of their chunks' gradients), not rows");
  if (std::optional<int> exit = flags.ParseOrExit(args)) return *exit;
  if (flags.GetInt("top") < 1) return flags.UsageError("--top must be >= 1");
  AttributeOptions options;
  absl::StatusOr<Method> method = ParseMethod(flags.GetString("method"));
  if (!method.ok()) return flags.UsageError(std::string(method.status().message()));
  options.method = *method;
  if (flags.IsSet("damping")) {
    if (flags.GetDouble("damping") < 0) return flags.UsageError("--damping must be >= 0");
    options.damping = Damping{flags.GetDouble("damping"), std::nullopt};
  }

  InitCompute();
  absl::StatusOr<std::unique_ptr<Attributor>> attributor = Attributor::Open(flags.GetString("index"));
  if (!attributor.ok()) return RuntimeError(attributor.status());
  const bool by_document = flags.GetBool("by-document");
  absl::StatusOr<Eigen::VectorXd> values;
  {
    ProgressBar bar;
    values = by_document ? (*attributor)->DocumentSelfInfluence(options, bar.Callback())
                         : (*attributor)->SelfInfluence(options, bar.Callback());
  }
  if (!values.ok()) return RuntimeError(values.status());
  const GradientIndex& index = (*attributor)->index();
  const int64_t n = values->size();
  // Entry i of `values`: a row, or (--by-document) a document, its first row and its rows.
  struct Entry {
    std::string id, source, preview;
    int64_t row = -1, chunks = 1;
  };
  auto entry = [&](int64_t i) {
    if (!by_document) {
      const SampleRecord& s = index.sample(i);
      return Entry{s.id, s.source, s.preview, i, 1};
    }
    const IndexDocuments& documents = (*attributor)->documents();
    const std::vector<int64_t> rows = documents.live_rows(i);
    const int64_t first = rows.empty() ? -1 : rows.front();
    return Entry{documents.id(i), documents.source(i),
                 first < 0 ? std::string() : index.sample(first).preview, first,
                 static_cast<int64_t>(rows.size())};
  };

  if (flags.IsSet("out")) {
    const std::vector<float> as_float(values->data(), values->data() + n);
    if (absl::Status s = WriteNpyF32(flags.GetString("out"), {n}, as_float.data()); !s.ok()) {
      return RuntimeError(s);
    }
  }
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  const int64_t top = std::min<int64_t>(flags.GetInt("top"), n);
  std::partial_sort(order.begin(), order.begin() + top, order.end(),
                    [&](int64_t a, int64_t b) { return (*values)[a] > (*values)[b]; });
  std::vector<double> sorted(values->data(), values->data() + n);
  std::sort(sorted.begin(), sorted.end());
  const double median = Quantile(sorted, 0.5), p99 = Quantile(sorted, 0.99);

  if (flags.GetBool("json")) {
    std::vector<std::string> rows;
    for (int64_t r = 0; r < top; ++r) {
      const Entry e = entry(order[r]);
      const std::string where =
          by_document
              ? absl::StrCat("\"chunks\": ", e.chunks, ", \"first_row\": ", e.row)
              : absl::StrCat("\"row\": ", e.row, ", \"label\": ", index.sample(e.row).label);
      rows.push_back(absl::StrCat("{\"rank\": ", r + 1, ", ", where, ", \"id\": ", JsonString(e.id),
                                  ", \"source\": ", JsonString(e.source),
                                  ", \"self_influence\": ", (*values)[order[r]],
                                  ", \"preview\": ", JsonString(e.preview), "}"));
    }
    std::cout << "{\"" << (by_document ? "documents" : "rows") << "\": " << n << ", \"method\": \""
              << MethodName(options.method) << "\", \"median\": " << median << ", \"p99\": " << p99
              << ", \"top\": [" << absl::StrJoin(rows, ", ") << "]}\n";
    return 0;
  }
  std::cout << absl::StrFormat("self-influence of %d %s (%s): median %.4g, p99 %.4g\n\n", n,
                               by_document ? "documents" : "rows", MethodName(options.method),
                               median, p99);
  std::cout << absl::StrFormat("%4s  %-34s %-16s %6s %12s %9s  %s\n", "rank",
                               by_document ? "document" : "id", "source", "chunks", "self-infl.",
                               "x median", "preview");
  for (int64_t r = 0; r < top; ++r) {
    const Entry e = entry(order[r]);
    const double v = (*values)[order[r]];
    std::cout << absl::StrFormat("%4d  %-34s %-16s %6d %12.4g %9.1f  %s\n", r + 1, e.id, e.source,
                                 e.chunks, v, median > 0 ? v / median : 0.0,
                                 e.preview.substr(0, 60));
  }
  return 0;
}

}  // namespace tda
