#include "curvature/lissa.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace tda {

absl::Status ValidateLissaOptions(const LissaOptions& options) {
  if (!std::isfinite(options.damping) || options.damping < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("LiSSA damping must be a finite number >= 0, got ", options.damping));
  }
  if (!std::isfinite(options.scale) || !(options.scale > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("LiSSA scale must be a finite number > 0, got ", options.scale));
  }
  if (options.depth < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("LiSSA depth must be >= 1, got ", options.depth));
  }
  if (options.repeats < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("LiSSA repeats must be >= 1, got ", options.repeats));
  }
  if (options.batch_size < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "LiSSA batch size must be >= 0 (0 = whole training set), got ", options.batch_size));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<LissaPreconditioner>> LissaPreconditioner::Create(
    const Model& model, const Dataset& data, const LissaOptions& options) {
  RETURN_IF_ERROR(ValidateLissaOptions(options));
  if (data.size() == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("LiSSA needs training batches; data set '", data.name, "' is empty"));
  }
  RETURN_IF_ERROR(CheckDataFitsModel(data, model.config(), "LiSSA"));
  return std::unique_ptr<LissaPreconditioner>(new LissaPreconditioner(model, data, options));
}

absl::StatusOr<Eigen::MatrixXd> LissaPreconditioner::Apply(const Eigen::MatrixXd& grads) const {
  const int64_t dim = model_.layout().total();
  if (grads.rows() != dim) {
    return absl::InvalidArgumentError(
        absl::StrCat("LiSSA: expected ", dim, " gradient rows, got ", grads.rows()));
  }
  if (!grads.allFinite()) return absl::InvalidArgumentError("LiSSA: gradients hold NaN or Inf");
  const double s = options_.scale;
  const double d = options_.damping / s;
  const int64_t n = data_.size();
  const bool full = options_.batch_size == 0 || options_.batch_size >= n;
  const int64_t rows = full ? n : options_.batch_size;
  const Eigen::ArrayXd v_norms = grads.colwise().norm().transpose().array();

  std::vector<int64_t> picked(full ? 0 : static_cast<size_t>(rows));
  Eigen::MatrixXd total = Eigen::MatrixXd::Zero(grads.rows(), grads.cols());
  for (int64_t r = 0; r < options_.repeats; ++r) {
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
      h = grads + (1.0 - d) * h - ch / s;
      const Eigen::ArrayXd norms = h.colwise().norm().transpose().array();
      for (Eigen::Index q = 0; q < norms.size(); ++q) {
        const double bound = 2.0 * static_cast<double>(t + 1) * v_norms(q);
        if (!std::isfinite(norms(q)) || norms(q) > bound) {
          return absl::FailedPreconditionError(absl::StrCat(
              "LiSSA diverged at iteration ", t, " (repeat ", r + 1, ", column ", q, ": |h| = ",
              norms(q), ", bound ", bound, "): scale ", s, " too small; try --lissa-scale ", 10 * s,
              " (or more damping if the ", CurvatureName(options_.curvature), " is indefinite)"));
        }
      }
    }
    total += h / s;
  }
  return Eigen::MatrixXd(total / static_cast<double>(options_.repeats));
}

absl::StatusOr<double> ChooseLissaScale(const Model& model, const Dataset& data,
                                        const LissaOptions& options, const Eigen::MatrixXd& probe,
                                        double max_scale) {
  absl::Status last = absl::OkStatus();
  for (double scale = 1; scale <= max_scale; scale *= 10) {
    LissaOptions trial = options;
    trial.scale = scale;
    trial.repeats = 1;
    ASSIGN_OR_RETURN(std::unique_ptr<LissaPreconditioner> lissa,
                     LissaPreconditioner::Create(model, data, trial));
    absl::StatusOr<Eigen::MatrixXd> result = lissa->Apply(probe);
    if (result.ok()) return scale;
    if (result.status().code() != absl::StatusCode::kFailedPrecondition) return result.status();
    last = result.status();
  }
  return absl::FailedPreconditionError(absl::StrCat("LiSSA diverged at every scale from 1 to ",
                                                    max_scale, "; last: ", last.message()));
}

}  // namespace tda
