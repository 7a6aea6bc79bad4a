// Factor fitting in two streaming passes over the first n samples.
//
// Sequences are taken in order of length and each batch is cut to its longest document, so
// little of the work is padding.
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

// Labels (targets) of samples [begin, begin + rows): the data's own, or drawn from the model's
// predictive distribution with a seed derived from (options.seed, begin), so both passes see
// the same. Sequences: one draw per position that has a target in the data (-1 elsewhere).
absl::StatusOr<std::vector<int32_t>> BatchLabels(const Model& model, const Batch& batch,
                                                 const FitOptions& options, int64_t begin) {
  const int32_t* own = batch.outputs();
  const int64_t count = batch.rows * batch.positions();
  if (options.fisher == FisherKind::kEmpirical) return std::vector<int32_t>(own, own + count);
  ASSIGN_OR_RETURN(Eigen::MatrixXf probs, model.Predict(batch));
  std::vector<int32_t> labels =
      SampleLabels(probs, MixSeed(options.seed ^ MixSeed(static_cast<uint64_t>(begin))));
  if (static_cast<int64_t>(labels.size()) != count) {
    return absl::InternalError(absl::StrCat("model predicted ", labels.size(), " outputs for ",
                                            count, " positions"));
  }
  for (int64_t i = 0; i < count; ++i) {
    if (own[i] < 0) labels[i] = own[i];
  }
  return labels;
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

absl::StatusOr<KroneckerFactors> FitKroneckerFactors(const Model& model, const RowSource& data,
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
  const int64_t n = std::min(options.max_examples, data.size());
  // Documents: the first n ordered by length, so that each batch, cut to its longest document,
  // is mostly not padding; the sums below do not depend on the order. Rows are read batch by
  // batch in this order (8 bytes a row held).
  std::vector<int64_t> order(static_cast<size_t>(n));
  if (data.is_sequence()) {
    order = OrderByLength(data, 0, n);
  } else {
    std::iota(order.begin(), order.end(), 0);
  }
  RowStorage storage;  // the current batch's rows, without the padding they all share
  // The capture of the layers the factors describe: the model's own or the projected ones.
  auto capture_batch = [&](int64_t begin, int64_t rows) -> absl::StatusOr<BatchCapture> {
    const Batch batch = GatherCut(data, order.data() + begin, rows, &storage);
    ASSIGN_OR_RETURN(std::vector<int32_t> labels, BatchLabels(model, batch, options, begin));
    ASSIGN_OR_RETURN(BatchCapture capture, model.Capture(batch.WithOutputs(labels.data())));
    RETURN_IF_ERROR(CheckCapture(capture, model.layout(), rows));
    if (projection == nullptr) return capture;
    BatchCapture projected = projection->ProjectCaptureSides(capture);
    RETURN_IF_ERROR(CheckCapture(projected, layout, rows));
    return projected;
  };

  KroneckerFactors factors;
  factors.layout = layout;
  factors.examples = n;
  factors.fisher = options.fisher == FisherKind::kTrue ? "true" : "empirical";
  for (const TrackedLayer& layer : layout.layers) {
    LayerFactors f;
    f.a_cov = Eigen::MatrixXd::Zero(layer.cols(), layer.cols());
    f.s_cov = Eigen::MatrixXd::Zero(layer.out, layer.out);
    f.corrected = Eigen::MatrixXd::Zero(layer.out, layer.cols());
    factors.layers.push_back(std::move(f));
  }

  // This rank's batches: [first, end) of the n rows, whole batches of the one-process order.
  const int64_t batches = (n + options.batch_size - 1) / options.batch_size;
  const auto [first_batch, end_batch] =
      collective == nullptr ? std::pair<int64_t, int64_t>(0, batches)
                            : RankSlice(batches, collective->rank(), collective->size());
  const int64_t first = first_batch * options.batch_size;
  const int64_t end = std::min(n, end_batch * options.batch_size);

  // Pass 1: covariances (lower triangles via symmetric rank-k updates). A is the mean over
  // positions with a target (padding rows of `a` are zero and not counted).
  int64_t position_rows = 0;
  ReportProgress(progress, "covariance", 0, end - first);
  for (int64_t begin = first; begin < end; begin += options.batch_size) {
    const int64_t rows = std::min(options.batch_size, end - begin);
    ASSIGN_OR_RETURN(BatchCapture capture, capture_batch(begin, rows));
    for (int64_t r = begin; r < begin + rows; ++r) position_rows += data.used_positions(order[r]);
    for (size_t l = 0; l < layout.layers.size(); ++l) {
      const LayerCapture& c = capture.layers[l];
      LayerFactors& f = factors.layers[l];
      const Eigen::MatrixXd a = c.a.cast<double>().transpose();  // cols x rows
      const Eigen::MatrixXd g = c.g.cast<double>().transpose();  // out x rows
      f.a_cov.selfadjointView<Eigen::Lower>().rankUpdate(a);
      f.s_cov.selfadjointView<Eigen::Lower>().rankUpdate(g);
    }
    ReportProgress(progress, "covariance", begin + rows - first, end - first);
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
    f.s_cov /= static_cast<double>(n);
  }
  RETURN_IF_ERROR(DecomposeFactors(&factors));

  // Pass 2: eigenvalue correction in the Kronecker eigenbasis, same labels as pass 1.
  ReportProgress(progress, "eigen-correction", 0, end - first);
  for (int64_t begin = first; begin < end; begin += options.batch_size) {
    const int64_t rows = std::min(options.batch_size, end - begin);
    ASSIGN_OR_RETURN(BatchCapture capture, capture_batch(begin, rows));
    const int64_t positions = capture.positions;
    for (size_t l = 0; l < layout.layers.size(); ++l) {
      const LayerCapture& c = capture.layers[l];
      LayerFactors& f = factors.layers[l];
      const Eigen::MatrixXd ar = c.a.cast<double>() * f.q_a;  // rows x cols: (Q_A^T a)^T
      const Eigen::MatrixXd gr = c.g.cast<double>() * f.q_s;  // rows x out:  (Q_S^T g)^T
      if (positions == 1) {
        // (Q_S^T g a^T Q_A)_{ij}^2 = (Q_S^T g)_i^2 (Q_A^T a)_j^2: one GEMM for the batch.
        f.corrected.noalias() +=
            gr.array().square().matrix().transpose() * ar.array().square().matrix();
      } else {
        for (int64_t s = 0; s < rows; ++s) {  // the sample's gradient; its padding is zero
          const int64_t used = std::min(positions, data.used_positions(order[begin + s]));
          const Eigen::MatrixXd v = gr.middleRows(s * positions, used).transpose() *
                                    ar.middleRows(s * positions, used);
          f.corrected.array() += v.array().square();
        }
      }
    }
    ReportProgress(progress, "eigen-correction", begin + rows - first, end - first);
  }
  if (collective != nullptr) {
    std::vector<Eigen::MatrixXd*> sums;
    for (LayerFactors& f : factors.layers) sums.push_back(&f.corrected);
    RETURN_IF_ERROR(AllReduceSums(collective, sums, nullptr));
  }
  for (LayerFactors& f : factors.layers) f.corrected /= static_cast<double>(n);
  return factors;
}

}  // namespace tda
