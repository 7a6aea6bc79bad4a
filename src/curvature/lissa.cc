#include "curvature/lissa.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"

namespace tda {

namespace {

absl::Status CheckLissaData(const Model& model, const Dataset& data) {
  if (data.size() == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("LiSSA needs training batches; data set '", data.name, "' is empty"));
  }
  return CheckDataFitsModel(data, model.config(), "LiSSA");
}

}  // namespace

absl::StatusOr<double> EstimateTopEigenvalue(const Model& model, const Batch& batch,
                                             Curvature curvature, int iterations) {
  const int64_t dim = model.layout().total();
  std::mt19937_64 rng(0x5EED);
  std::normal_distribution<double> normal;
  Eigen::VectorXd v(dim);
  for (int64_t i = 0; i < dim; ++i) v(i) = normal(rng);
  v.normalize();
  double eigenvalue = 0;
  for (int i = 0; i < iterations; ++i) {
    ASSIGN_OR_RETURN(Eigen::MatrixXd cv, model.CurvatureProduct(batch, v, curvature));
    eigenvalue = v.dot(cv.col(0));  // Rayleigh quotient of the unit vector v
    const double norm = cv.norm();
    if (!std::isfinite(norm)) {
      return absl::InternalError("power iteration: the curvature product is not finite");
    }
    if (norm == 0) return 0.0;
    v = cv.col(0) / norm;
  }
  return eigenvalue;
}

absl::StatusOr<double> EstimateLissaScale(const Model& model, const Dataset& data,
                                          const LissaOptions& options) {
  RETURN_IF_ERROR(CheckLissaData(model, data));
  // The recursion's own batches: the curvature of a small batch has a larger top eigenvalue
  // than the whole set's, so stochastic LiSSA takes the largest over several of its batches.
  constexpr int64_t kEstimateRows = 2048;
  constexpr int kProbeBatches = 8;
  const int64_t n = data.size();
  const bool full = options.batch_size == 0 || options.batch_size >= n;
  const int64_t rows = full ? std::min(n, kEstimateRows) : options.batch_size;
  const int batches = full ? 1 : kProbeBatches;
  std::mt19937_64 rng(options.seed ^ 0xE5715CA1Eull);
  std::uniform_int_distribution<int64_t> pick(0, n - 1);
  double top = 0;
  for (int b = 0; b < batches; ++b) {
    double estimate = 0;
    if (rows == n) {
      ASSIGN_OR_RETURN(estimate, EstimateTopEigenvalue(model, data.Rows(0, n), options.curvature));
    } else {
      std::vector<int64_t> picked(static_cast<size_t>(rows));
      for (int64_t& row : picked) row = pick(rng);
      const Dataset sample = data.Select(picked);
      ASSIGN_OR_RETURN(estimate,
                       EstimateTopEigenvalue(model, sample.Rows(0, rows), options.curvature));
    }
    top = std::max(top, std::abs(estimate));
  }
  const double scale = 1.25 * (top + options.damping);
  if (!(scale > 0)) {
    return absl::FailedPreconditionError(
        "LiSSA: the curvature is zero and there is no damping; give damping > 0");
  }
  return scale;
}

absl::StatusOr<std::unique_ptr<LissaPreconditioner>> LissaPreconditioner::Create(
    const Model& model, const Dataset& data, const LissaOptions& options) {
  RETURN_IF_ERROR(ValidateLissaOptions(options));
  RETURN_IF_ERROR(CheckLissaData(model, data));
  LissaOptions resolved = options;
  const bool estimated = resolved.scale == 0;
  if (estimated) {
    ASSIGN_OR_RETURN(resolved.scale, EstimateLissaScale(model, data, options));
  }
  return std::unique_ptr<LissaPreconditioner>(
      new LissaPreconditioner(model, data, resolved, estimated));
}

absl::StatusOr<Eigen::MatrixXd> LissaPreconditioner::Apply(const Eigen::MatrixXd& grads) const {
  const int64_t dim = model_.layout().total();
  if (grads.rows() != dim) {
    return absl::InvalidArgumentError(
        absl::StrCat("LiSSA: expected ", dim, " gradient rows, got ", grads.rows()));
  }
  if (!grads.allFinite()) return absl::InvalidArgumentError("LiSSA: gradients hold NaN or Inf");
  // An estimated scale that still diverges (a batch whose curvature tops the estimate) is
  // raised 4x and the repeat restarted, at most kRaises times; a given scale is kept.
  constexpr int kRaises = 3;
  double s = options_.scale;
  int raises_left = scale_estimated_ ? kRaises : 0;
  Eigen::MatrixXd total = Eigen::MatrixXd::Zero(grads.rows(), grads.cols());
  for (int64_t r = 0; r < options_.repeats; ++r) {
    absl::StatusOr<Eigen::MatrixXd> h = Recurse(grads, s, r);
    while (!h.ok() && h.status().code() == absl::StatusCode::kFailedPrecondition &&
           raises_left-- > 0) {
      s *= 4;
      h = Recurse(grads, s, r);
    }
    if (!h.ok()) return h.status();
    total += *h / s;
  }
  return Eigen::MatrixXd(total / static_cast<double>(options_.repeats));
}

absl::StatusOr<Eigen::MatrixXd> LissaPreconditioner::Recurse(const Eigen::MatrixXd& grads,
                                                             double s, int64_t r) const {
  const double d = options_.damping / s;
  const int64_t n = data_.size();
  const bool full = options_.batch_size == 0 || options_.batch_size >= n;
  const int64_t rows = full ? n : options_.batch_size;
  const Eigen::ArrayXd v_norms = grads.colwise().norm().transpose().array();
  std::vector<int64_t> picked(full ? 0 : static_cast<size_t>(rows));
  std::mt19937_64 rng(options_.seed + 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(r + 1));
  std::uniform_int_distribution<int64_t> pick(0, n - 1);
  Eigen::MatrixXd h = grads;
  for (int64_t t = 1; t <= options_.depth; ++t) {
    Dataset sampled;
    if (!full) {
      for (int64_t i = 0; i < rows; ++i) picked[i] = pick(rng);
      sampled = data_.Select(picked);
    }
    const Batch batch = full ? data_.Rows(0, n) : sampled.Rows(0, rows);
    ASSIGN_OR_RETURN(Eigen::MatrixXd ch, model_.CurvatureProduct(batch, h, options_.curvature));
    // h_t - h_{t-1} = v - (C + damping) h_{t-1} / s: the residual of the system at x = h / s.
    const Eigen::MatrixXd step = grads - d * h - ch / s;
    h += step;
    const Eigen::ArrayXd norms = h.colwise().norm().transpose().array();
    for (Eigen::Index q = 0; q < norms.size(); ++q) {
      const double bound = 2.0 * static_cast<double>(t + 1) * v_norms(q);
      if (!std::isfinite(norms(q)) || norms(q) > bound) {
        return absl::FailedPreconditionError(absl::StrCat(
            "LiSSA diverged at iteration ", t, " (repeat ", r + 1, ", column ", q, ": |h| = ",
            norms(q), ", bound ", bound, "): scale ", s, " too small; try --lissa-scale ", 10 * s,
            " (API: lissa.scale), or, when the ", CurvatureName(options_.curvature),
            " is indefinite, more damping or --lissa-curvature gauss-newton"));
      }
    }
    const Eigen::ArrayXd step_norms = step.colwise().norm().transpose().array();
    const Eigen::ArrayXd residuals = (v_norms > 0).select(step_norms / v_norms, 0.0);
    const bool converged = options_.tolerance > 0 && (residuals <= options_.tolerance).all();
    if (options_.progress && (t <= 10 || t % 10 == 0 || converged || t == options_.depth)) {
      ReportProgress(
          options_.progress, "lissa", converged ? options_.depth : t, options_.depth,
          absl::StrFormat("repeat %d of %d, step %d, residual %.3g (tolerance %g)", r + 1,
                          options_.repeats, t, residuals.maxCoeff(), options_.tolerance));
    }
    if (converged) break;
  }
  return h;
}

}  // namespace tda
