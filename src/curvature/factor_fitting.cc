// Factor fitting in two streaming passes over n samples (FitWindowStarts: spread over the data).
//
// Sequences are taken in CaptureOrder (by length within windows of 8 batches) and each batch is
// cut to its longest document, so little of the work is padding.
//
// Normalisation: A = mean over positions with a target (not padding) of a a^T, S = mean over
// samples of sum_t g_t g_t^T. For an MLP (one position) both are plain means over samples, and
// E[vec G vec G^T] ~= S (x) A is the K-FAC approximation of the Fisher of the mean loss.
// The eigenvalue correction is the mean over samples of (Q_S^T G_i Q_A)^2 with
// G_i = sum_t g_{i,t} a_{i,t}^T, so it does not depend on how A and S are scaled.
#include "curvature/factor_fitting.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "data/dataset_rows.h"

namespace tda {
namespace {

// SplitMix64 finaliser: decorrelates the per-batch seeds derived from one user seed.
uint64_t MixSeed(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

absl::Status ValidateInputs(const Model& model, const RowSource& data, const FitOptions& options) {
  RETURN_IF_ERROR(CheckDataFitsModel(data, model.config(), "factor fitting"));
  if (data.size() == 0) {
    return absl::InvalidArgumentError(absl::StrCat("data set ", data.name(), " is empty"));
  }
  if (options.batch_size <= 0 || options.max_examples <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("factor fitting needs batch_size > 0 and max_examples > 0, got ",
                     options.batch_size, " and ", options.max_examples));
  }
  return absl::OkStatus();
}

absl::Status CheckCapture(const BatchCapture& capture, const ParamLayout& layout, int64_t rows) {
  if (capture.samples != rows || capture.positions < 1 ||
      capture.layers.size() != layout.layers.size()) {
    return absl::InternalError(absl::StrCat("model capture has ", capture.samples, " samples, ",
                                            capture.layers.size(), " layers; expected ", rows,
                                            " samples, ", layout.layers.size(), " layers"));
  }
  for (size_t l = 0; l < layout.layers.size(); ++l) {
    const TrackedLayer& layer = layout.layers[l];
    const LayerCapture& c = capture.layers[l];
    const int64_t n = rows * capture.positions;
    if (c.a.rows() != n || c.a.cols() != layer.cols() || c.g.rows() != n ||
        c.g.cols() != layer.out) {
      return absl::InternalError(absl::StrCat("layer ", layer.name, ": captured a is ", c.a.rows(),
                                              "x", c.a.cols(), " and g is ", c.g.rows(), "x",
                                              c.g.cols(), ", expected ", n, "x", layer.cols(),
                                              " and ", n, "x", layer.out));
    }
  }
  return absl::OkStatus();
}

// The true-Fisher labels of the batch at position `begin` of the capture order: drawn from the
// model's predictive distribution with a seed derived from (seed, begin), so every pass sees the
// same. Sequences: one draw per position that has a target in the data (-1 elsewhere).
LabelSampler FisherLabels(const Batch& batch, uint64_t seed, int64_t begin) {
  return [&batch, seed, begin](const Eigen::MatrixXf& probs,
                               int64_t positions) -> absl::StatusOr<std::vector<int32_t>> {
    const int64_t count = batch.rows * batch.positions();
    if (positions != batch.positions() || probs.rows() != count) {
      return absl::InternalError(absl::StrCat("model predicted ", probs.rows(), " outputs at ",
                                              positions, " positions for ", count,
                                              " positions (is the batch cut?)"));
    }
    std::vector<int32_t> labels =
        SampleLabels(probs, MixSeed(seed ^ MixSeed(static_cast<uint64_t>(begin))));
    const int32_t* own = batch.outputs();
    for (int64_t i = 0; i < count; ++i) {
      if (own[i] < 0) labels[i] = own[i];
    }
    return labels;
  };
}

// The batches of a fit on this rank: the fit's rows (FitWindowStarts) in CaptureOrder, window
// by window; positions [first, end) of that order are this rank's.
struct FitBatches {
  int64_t n = 0;
  int64_t window = 0;
  std::vector<int64_t> window_starts;
  std::vector<int64_t> order;
  int64_t first = 0, end = 0;

  // The position in the whole data's CaptureOrder of position p of the fit's order: it seeds
  // the sampled labels, so the fused gradient pass (which walks the whole data) draws the same.
  int64_t DataPosition(int64_t p) const { return window_starts[p / window] + p % window; }
};

FitBatches PlanFit(const RowSource& data, const FitOptions& options, Collective* collective) {
  FitBatches plan;
  plan.n = std::min(options.max_examples, data.size());
  plan.window = CaptureWindowRows(data, options.batch_size);
  plan.window_starts = FitWindowStarts(data, options);
  plan.order.reserve(static_cast<size_t>(plan.n));
  for (const int64_t start : plan.window_starts) {
    const int64_t rows = std::min(plan.window, plan.n - static_cast<int64_t>(plan.order.size()));
    const std::vector<int64_t> part = CaptureOrder(data, start, start + rows, options.batch_size);
    plan.order.insert(plan.order.end(), part.begin(), part.end());
  }
  // This rank's batches: whole batches of the one-process order.
  const int64_t batches = (plan.n + options.batch_size - 1) / options.batch_size;
  const auto [first_batch, end_batch] =
      collective == nullptr ? std::pair<int64_t, int64_t>(0, batches)
                            : RankSlice(batches, collective->rank(), collective->size());
  plan.first = first_batch * options.batch_size;
  plan.end = std::min(plan.n, end_batch * options.batch_size);
  return plan;
}

// Sums `matrices` (and `*scalar`, when given) over the collective's ranks, in one all-reduce.
absl::Status AllReduceSums(Collective* collective, const std::vector<Eigen::MatrixXd*>& matrices,
                           double* scalar) {
  std::vector<double> packed;
  for (const Eigen::MatrixXd* m : matrices)
    packed.insert(packed.end(), m->data(), m->data() + m->size());
  if (scalar != nullptr) packed.push_back(*scalar);
  RETURN_IF_ERROR(collective->AllReduceSum(packed.data(), static_cast<int64_t>(packed.size())));
  const double* next = packed.data();
  for (Eigen::MatrixXd* m : matrices) {
    std::copy(next, next + m->size(), m->data());
    next += m->size();
  }
  if (scalar != nullptr) *scalar = *next;
  return absl::OkStatus();
}

}  // namespace

std::vector<int32_t> SampleLabels(const Eigen::MatrixXf& probabilities, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::vector<int32_t> labels(probabilities.rows());
  for (int64_t r = 0; r < probabilities.rows(); ++r) {
    // Inverse-CDF sampling with a 53-bit uniform from the raw generator: the same labels on every
    // standard library (std::discrete_distribution's algorithm is implementation-defined).
    double total = 0;
    for (int64_t c = 0; c < probabilities.cols(); ++c) {
      const double p = probabilities(r, c);
      if (std::isfinite(p) && p > 0) total += p;
    }
    const double u = static_cast<double>(gen() >> 11) * 0x1.0p-53 * total;
    int32_t label = 0;
    double cumulative = 0;
    for (int64_t c = 0; c < probabilities.cols(); ++c) {
      const double p = probabilities(r, c);
      if (!(std::isfinite(p) && p > 0)) continue;
      label = static_cast<int32_t>(c);  // last class with positive mass, if u hits the end
      cumulative += p;
      if (u < cumulative) break;
    }
    labels[r] = label;
  }
  return labels;
}

absl::StatusOr<KroneckerFactors> FitKroneckerFactors(const Model& model, const Dataset& data,
                                                     const FitOptions& options,
                                                     const ProgressFn& progress,
                                                     const Projection* projection) {
  if (!data.is_sequence() &&
      static_cast<int64_t>(data.features.size()) != data.size() * data.feature_dim) {
    return absl::InvalidArgumentError(
        absl::StrCat("data set ", data.name, " holds ", data.features.size(),
                     " feature values, expected ", data.size() * data.feature_dim));
  }
  return FitKroneckerFactors(model, DatasetRows(data), options, progress, projection);
}

int64_t CaptureWindowRows(const RowSource& data, int64_t batch_size) {
  return data.is_sequence() ? 8 * batch_size : batch_size;
}

std::vector<int64_t> CaptureOrder(const RowSource& data, int64_t begin, int64_t end,
                                  int64_t batch_size) {
  std::vector<int64_t> order;
  order.reserve(static_cast<size_t>(std::max<int64_t>(0, end - begin)));
  const int64_t window = CaptureWindowRows(data, batch_size);
  for (int64_t w = begin; w < end; w += window) {
    const int64_t w_end = std::min(end, w + window);
    if (data.is_sequence()) {
      const std::vector<int64_t> sorted = OrderByLength(data, w, w_end);
      order.insert(order.end(), sorted.begin(), sorted.end());
    } else {
      for (int64_t r = w; r < w_end; ++r) order.push_back(r);
    }
  }
  return order;
}

std::vector<int64_t> FitWindowStarts(const RowSource& data, const FitOptions& options) {
  const int64_t n = std::min(options.max_examples, data.size());
  const int64_t window = CaptureWindowRows(data, options.batch_size);
  const int64_t windows = (data.size() + window - 1) / window;
  const int64_t chosen = (n + window - 1) / window;
  std::vector<int64_t> starts;
  starts.reserve(static_cast<size_t>(chosen));
  // Window floor(j * windows / chosen) for j < chosen: all of them when chosen == windows, else
  // evenly spaced and never the data's last (possibly short) window.
  for (int64_t j = 0; j < chosen; ++j) starts.push_back(j * windows / chosen * window);
  return starts;
}

absl::StatusOr<BatchCapture> CaptureForFit(const Model& model, const Batch& batch,
                                           const FitOptions& options, int64_t begin,
                                           const Projection* projection, BatchCapture* own) {
  if (own != nullptr && options.fisher != FisherKind::kTrue) {
    return absl::InternalError("a second capture of the own labels needs the true Fisher");
  }
  BatchCapture capture;
  if (options.fisher == FisherKind::kEmpirical) {
    ASSIGN_OR_RETURN(capture, model.Capture(batch));
  } else {
    ASSIGN_OR_RETURN(capture,
                     CaptureSampled(model, batch, FisherLabels(batch, options.seed, begin), own));
  }
  const ParamLayout& layout = model.layout();
  RETURN_IF_ERROR(CheckCapture(capture, layout, batch.rows));
  if (own != nullptr) {
    // Give own's a the shape of no rows, so that projecting it projects only g.
    for (size_t l = 0; l < own->layers.size() && l < layout.layers.size(); ++l) {
      own->layers[l].a.resize(0, layout.layers[l].cols());
    }
  }
  if (projection == nullptr) return capture;
  BatchCapture projected = projection->ProjectCaptureSides(capture);
  RETURN_IF_ERROR(CheckCapture(projected, projection->projected_layout(), batch.rows));
  if (own != nullptr) *own = projection->ProjectCaptureSides(*own);
  return projected;
}

absl::StatusOr<KroneckerFactors> FitCovariances(const Model& model, const RowSource& data,
                                                const FitOptions& options,
                                                const ProgressFn& progress,
                                                const Projection* projection,
                                                Collective* collective) {
  RETURN_IF_ERROR(ValidateInputs(model, data, options));
  if (projection != nullptr && projection->input_dim() != model.layout().total()) {
    return absl::InvalidArgumentError(absl::StrCat("projection expects ", projection->input_dim(),
                                                   " parameters, model has ",
                                                   model.layout().total()));
  }
  const ParamLayout& layout =
      projection != nullptr ? projection->projected_layout() : model.layout();
  // Rows are read batch by batch in capture order (8 bytes a row held); the sums below do not
  // depend on the order.
  const FitBatches plan = PlanFit(data, options, collective);
  RowStorage storage;  // the current batch's rows, without the padding they all share

  KroneckerFactors factors;
  factors.layout = layout;
  factors.examples = plan.n;
  factors.fisher = options.fisher == FisherKind::kTrue ? "true" : "empirical";
  for (const TrackedLayer& layer : layout.layers) {
    LayerFactors f;
    f.a_cov = Eigen::MatrixXd::Zero(layer.cols(), layer.cols());
    f.s_cov = Eigen::MatrixXd::Zero(layer.out, layer.out);
    f.corrected = Eigen::MatrixXd::Zero(layer.out, layer.cols());
    factors.layers.push_back(std::move(f));
  }

  // Covariances (lower triangles via symmetric rank-k updates). A is the mean over positions
  // with a target (padding rows of `a` are zero and not counted).
  int64_t position_rows = 0;
  ReportProgress(progress, "covariance", 0, plan.end - plan.first);
  for (int64_t begin = plan.first; begin < plan.end; begin += options.batch_size) {
    const int64_t rows = std::min(options.batch_size, plan.end - begin);
    const Batch batch = GatherCut(data, plan.order.data() + begin, rows, &storage);
    ASSIGN_OR_RETURN(BatchCapture capture,
                     CaptureForFit(model, batch, options, plan.DataPosition(begin), projection));
    for (int64_t r = begin; r < begin + rows; ++r) {
      position_rows += data.used_positions(plan.order[r]);
    }
    for (size_t l = 0; l < layout.layers.size(); ++l) {
      const LayerCapture& c = capture.layers[l];
      LayerFactors& f = factors.layers[l];
      const Eigen::MatrixXd a = c.a.cast<double>().transpose();  // cols x rows
      const Eigen::MatrixXd g = c.g.cast<double>().transpose();  // out x rows
      f.a_cov.selfadjointView<Eigen::Lower>().rankUpdate(a);
      f.s_cov.selfadjointView<Eigen::Lower>().rankUpdate(g);
    }
    ReportProgress(progress, "covariance", begin + rows - plan.first, plan.end - plan.first);
  }
  if (collective != nullptr) {
    double counted = static_cast<double>(position_rows);
    std::vector<Eigen::MatrixXd*> sums = {};
    for (LayerFactors& f : factors.layers) sums.insert(sums.end(), {&f.a_cov, &f.s_cov});
    RETURN_IF_ERROR(AllReduceSums(collective, sums, &counted));
    position_rows = static_cast<int64_t>(counted);
  }
  for (LayerFactors& f : factors.layers) {
    f.a_cov = f.a_cov.selfadjointView<Eigen::Lower>();
    f.s_cov = f.s_cov.selfadjointView<Eigen::Lower>();
    f.a_cov /= static_cast<double>(position_rows);
    f.s_cov /= static_cast<double>(plan.n);
  }
  RETURN_IF_ERROR(DecomposeFactors(&factors));
  return factors;
}

void AddEigenCorrection(const BatchCapture& capture, const RowSource& data, const int64_t* rows,
                        KroneckerFactors* factors) {
  const int64_t positions = capture.positions;
  for (size_t l = 0; l < factors->layers.size(); ++l) {
    const LayerCapture& c = capture.layers[l];
    LayerFactors& f = factors->layers[l];
    const Eigen::MatrixXd ar = c.a.cast<double>() * f.q_a;  // rows x cols: (Q_A^T a)^T
    const Eigen::MatrixXd gr = c.g.cast<double>() * f.q_s;  // rows x out:  (Q_S^T g)^T
    if (positions == 1) {
      // (Q_S^T g a^T Q_A)_{ij}^2 = (Q_S^T g)_i^2 (Q_A^T a)_j^2: one GEMM for the batch.
      f.corrected.noalias() +=
          gr.array().square().matrix().transpose() * ar.array().square().matrix();
      continue;
    }
    for (int64_t s = 0; s < capture.samples; ++s) {  // the sample's gradient; its padding is 0
      const int64_t used = std::min(positions, data.used_positions(rows[s]));
      const Eigen::MatrixXd v =
          gr.middleRows(s * positions, used).transpose() * ar.middleRows(s * positions, used);
      f.corrected.array() += v.array().square();
    }
  }
}

absl::Status FinishEigenCorrection(KroneckerFactors* factors, Collective* collective) {
  if (collective != nullptr) {
    std::vector<Eigen::MatrixXd*> sums;
    for (LayerFactors& f : factors->layers) sums.push_back(&f.corrected);
    RETURN_IF_ERROR(AllReduceSums(collective, sums, nullptr));
  }
  for (LayerFactors& f : factors->layers) f.corrected /= static_cast<double>(factors->examples);
  return absl::OkStatus();
}

absl::StatusOr<KroneckerFactors> FitKroneckerFactors(const Model& model, const RowSource& data,
                                                     const FitOptions& options,
                                                     const ProgressFn& progress,
                                                     const Projection* projection,
                                                     Collective* collective) {
  ASSIGN_OR_RETURN(KroneckerFactors factors,
                   FitCovariances(model, data, options, progress, projection, collective));
  // Eigenvalue correction in the Kronecker eigenbasis: the same batches and labels.
  const FitBatches plan = PlanFit(data, options, collective);
  RowStorage storage;
  ReportProgress(progress, "eigen-correction", 0, plan.end - plan.first);
  for (int64_t begin = plan.first; begin < plan.end; begin += options.batch_size) {
    const int64_t rows = std::min(options.batch_size, plan.end - begin);
    const Batch batch = GatherCut(data, plan.order.data() + begin, rows, &storage);
    ASSIGN_OR_RETURN(BatchCapture capture,
                     CaptureForFit(model, batch, options, plan.DataPosition(begin), projection));
    AddEigenCorrection(capture, data, plan.order.data() + begin, &factors);
    ReportProgress(progress, "eigen-correction", begin + rows - plan.first,
                   plan.end - plan.first);
  }
  RETURN_IF_ERROR(FinishEigenCorrection(&factors, collective));
  return factors;
}

}  // namespace tda
