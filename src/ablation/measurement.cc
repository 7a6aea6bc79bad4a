#include "ablation/measurement.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "ablation/method_scores.h"
#include "ablation/removal_ablation.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "data/byte_tokenizer.h"
#include "grad/per_sample_gradients.h"

namespace tda {
namespace {

constexpr int64_t kChunk = 1024;

int64_t ClassCount(const Model& model) { return model.config().num_classes; }

// Captures of rows [begin, end) of `queries` with every row relabelled k, one per class.
absl::StatusOr<std::vector<BatchCapture>> CapturesPerClass(const Model& model,
                                                           const Dataset& queries, int64_t begin,
                                                           int64_t end) {
  std::vector<BatchCapture> out;
  std::vector<int32_t> labels(static_cast<size_t>(end - begin));
  for (int64_t k = 0; k < ClassCount(model); ++k) {
    std::fill(labels.begin(), labels.end(), static_cast<int32_t>(k));
    ASSIGN_OR_RETURN(BatchCapture capture, model.Capture(Batch::Classification(
                                               queries.row(begin), labels.data(), end - begin)));
    out.push_back(std::move(capture));
  }
  return out;
}

// Per row r of a chunk: log p_k = -loss_k, f = logsumexp_{k != y} log p_k - log p_y, and the
// weights w_k = p_k / (1 - p_y) (k != y), w_y = -1 of the file comment.
void MarginOfRow(const std::vector<BatchCapture>& captures, int64_t r, int32_t y, double* f,
                 Eigen::VectorXd* w) {
  const int64_t classes = static_cast<int64_t>(captures.size());
  double top = -INFINITY;
  for (int64_t k = 0; k < classes; ++k) {
    if (k != y) top = std::max(top, -static_cast<double>(captures[k].losses[r]));
  }
  double sum = 0;
  for (int64_t k = 0; k < classes; ++k) {
    if (k != y) sum += std::exp(-static_cast<double>(captures[k].losses[r]) - top);
  }
  const double log_rest = top + std::log(sum);  // log(1 - p_y)
  *f = log_rest + static_cast<double>(captures[y].losses[r]);
  w->resize(classes);
  for (int64_t k = 0; k < classes; ++k) {
    (*w)(k) = k == y ? -1.0 : std::exp(-static_cast<double>(captures[k].losses[r]) - log_rest);
  }
}

absl::Status CheckClassifier(const Dataset& queries) {
  if (queries.is_sequence()) {
    return absl::InvalidArgumentError(
        "the margin measurement is defined for classifiers; sequence models measure the loss");
  }
  return absl::OkStatus();
}

// 1 / T per row: T its target tokens (sequences), 1 for a classifier's row.
Eigen::VectorXd InverseTargetCounts(const Dataset& queries) {
  Eigen::VectorXd out = Eigen::VectorXd::Ones(queries.size());
  if (!queries.is_sequence()) return out;
  for (int64_t q = 0; q < queries.size(); ++q) {
    const int32_t* targets = queries.targets.data() + q * queries.sequence_length;
    const int64_t count = std::count_if(targets, targets + queries.sequence_length,
                                        [](int32_t t) { return t != kNoTarget; });
    out(q) = 1.0 / static_cast<double>(std::max<int64_t>(1, count));
  }
  return out;
}

}  // namespace

absl::StatusOr<Measurement> ParseMeasurement(const std::string& name) {
  if (name == "loss") return Measurement::kLoss;
  if (name == "mean") return Measurement::kMeanLoss;
  if (name == "margin") return Measurement::kMargin;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown measurement '", name,
      "' (use loss: -log p_y, summed over a text's tokens; mean: that loss per target token; or "
      "margin: -log(p_y / (1 - p_y)))"));
}

const char* MeasurementName(Measurement measurement) {
  switch (measurement) {
    case Measurement::kLoss:
      return "loss";
    case Measurement::kMeanLoss:
      return "mean";
    case Measurement::kMargin:
      return "margin";
  }
  return "loss";
}

absl::StatusOr<Eigen::VectorXd> QueryMeasurements(const Model& model, const Dataset& queries,
                                                  Measurement measurement) {
  if (measurement == Measurement::kLoss) return QueryLosses(model, queries);
  if (measurement == Measurement::kMeanLoss) {
    ASSIGN_OR_RETURN(Eigen::VectorXd losses, QueryLosses(model, queries));
    return Eigen::VectorXd(losses.cwiseProduct(InverseTargetCounts(queries)));
  }
  RETURN_IF_ERROR(CheckClassifier(queries));
  Eigen::VectorXd out(queries.size());
  Eigen::VectorXd w;
  for (int64_t begin = 0; begin < queries.size(); begin += kChunk) {
    const int64_t end = std::min(queries.size(), begin + kChunk);
    ASSIGN_OR_RETURN(std::vector<BatchCapture> captures,
                     CapturesPerClass(model, queries, begin, end));
    for (int64_t q = begin; q < end; ++q) {
      MarginOfRow(captures, q - begin, queries.labels[q], &out(q), &w);
    }
  }
  return out;
}

absl::StatusOr<Eigen::MatrixXd> MeasurementGradientColumns(const Model& model,
                                                           const Dataset& queries,
                                                           Measurement measurement) {
  if (measurement == Measurement::kLoss) return GradientColumns(model, queries);
  if (measurement == Measurement::kMeanLoss) {
    ASSIGN_OR_RETURN(Eigen::MatrixXd columns, GradientColumns(model, queries));
    return Eigen::MatrixXd(columns * InverseTargetCounts(queries).asDiagonal());
  }
  RETURN_IF_ERROR(CheckClassifier(queries));
  Eigen::MatrixXd out(model.layout().total(), queries.size());
  Eigen::VectorXd w;
  double f = 0;
  for (int64_t begin = 0; begin < queries.size(); begin += kChunk) {
    const int64_t end = std::min(queries.size(), begin + kChunk);
    ASSIGN_OR_RETURN(std::vector<BatchCapture> captures,
                     CapturesPerClass(model, queries, begin, end));
    // grad f = -sum_k w_k grad CE_k, combined on each layer's g (a is shared).
    BatchCapture combined = captures[0];
    for (LayerCapture& layer : combined.layers) layer.g.setZero();
    for (int64_t r = 0; r < end - begin; ++r) {
      MarginOfRow(captures, r, queries.labels[begin + r], &f, &w);
      for (size_t l = 0; l < combined.layers.size(); ++l) {
        for (int64_t k = 0; k < ClassCount(model); ++k) {
          combined.layers[l].g.row(r) -= static_cast<float>(w(k)) * captures[k].layers[l].g.row(r);
        }
      }
    }
    out.middleCols(begin, end - begin) = PerSampleGradientColumns(combined, model.layout());
  }
  return out;
}

}  // namespace tda
