// Influence scores of every training sample for a set of queries, by any
// attribution method, with the cost of computing them: the common first step of
// the leave-one-out and LDS evaluations (and of the CLI's `tda eval`).
//
//   score(i, q) = grad f_q^T P grad l_i       (P the method's preconditioner,
//   exact gradients; f the settings' measurement, the loss l by default)
//
// Sign: score > 0 means sample i is a proponent of query q: removing i would
// RAISE the query's loss (to first order, by score / N for an objective that
// averages over N samples).
//
// Every method gets the same absolute damping lambda, so that they approximate
// the same (C + lambda I)^-1: C is the Gauss-Newton matrix (the Fisher) for
// ekfac / kfac, and the settings' `curvature` (Gauss-Newton or Hessian) for
// exact and lissa.
//
// Not thread-safe on the same model (computations are sequential and time
// themselves).
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <optional>
#include <string>

#include "ablation/measurement.h"
#include "absl/status/statusor.h"
#include "common/progress.h"
#include "curvature/factor_fitting.h"
#include "curvature/lissa.h"
#include "curvature/preconditioner.h"
#include "data/dataset.h"
#include "model/model.h"

namespace tda {

struct MethodSettings {
  double damping = 0.01;                          // lambda >= 0, the same for every method
  Measurement measurement = Measurement::kLoss;   // of the queries (ablation/measurement.h)
  Curvature curvature = Curvature::kGaussNewton;  // of exact and lissa
  FitOptions fit;                                 // EK-FAC / K-FAC factor fitting
  // LiSSA (its damping and curvature are the two above). lissa_scale <= 0:
  // estimated (EstimateLissaScale, raised if it diverges); lissa_depth <= 0: up to
  // max_lissa_depth steps, each repeat stopping at LiSSA's residual tolerance.
  double lissa_scale = 0;
  int64_t lissa_depth = 0;
  int64_t lissa_repeats = 1;
  int64_t lissa_batch_size = 256;  // 0 = the whole training set per step
  uint64_t lissa_seed = 0;
  int64_t max_lissa_depth = 10000;
  // TrackStar's unit normalisation (Chang et al. 2024), as attribution/unit_norm.h applies it
  // to an index: the query gradient scaled to unit norm before the preconditioner, each score
  // divided by the norm of the training sample's gradient.
  bool unit_norm = false;
};

struct MethodScores {
  Method method = Method::kEkfac;
  Eigen::MatrixXd scores;  // N x Q, see the file comment
  double seconds = 0;      // wall time: preconditioner set-up + gradients + scores
  int64_t peak_bytes = 0;  // peak resident memory above the level at the start
  std::string detail;      // e.g. "lambda 0.01; LiSSA scale 10, depth 700"
};

// The default damping of the evaluations: weight_decay (the L2 term of the
// training objective, part of its true curvature) + 0.1 x the mean EK-FAC
// eigenvalue over all parameters (the field's usual default),
// with factors fitted with `fit` on `train`.
[[nodiscard]] absl::StatusOr<double> DefaultDamping(const Model& model, const Dataset& train, double weight_decay,
                                      const FitOptions& fit);

// Scores of all rows of `train` for all rows of `queries` (their own labels) by
// `method`, timed and memory-measured from the first step (fitting factors,
// building the exact matrix, choosing the LiSSA scale) to the last.
// kFailedPrecondition from exact for models with more than kMaxExactParameters
// parameters, from lissa when it diverges; kInvalidArgument for negative
// damping or empty sets.
[[nodiscard]] absl::StatusOr<MethodScores> ComputeMethodScores(Method method, const Model& model,
                                                 const Dataset& train, const Dataset& queries,
                                                 const MethodSettings& settings,
                                                 const ProgressFn& progress = {});

// Full per-sample gradients of every row of `data` (D x N), in chunks.
[[nodiscard]] absl::StatusOr<Eigen::MatrixXd> GradientColumns(const Model& model, const Dataset& data);

// Peak resident memory of a section of code. Start returns freed heap pages to
// the kernel (malloc_trim), resets the kernel's high-water mark
// (/proc/self/clear_refs, "5") and records the current RSS; PeakBytes returns
// VmHWM minus that RSS. Where the reset is refused, the lifetime VmHWM is used
// (an underestimate of the section's own peak when an earlier section was
// larger). Linux only; 0 elsewhere.
class MemoryProbe {
 public:
  void Start();
  int64_t PeakBytes() const;
  // The RSS at Start(): StartBytes() + PeakBytes() is the section's absolute peak.
  int64_t StartBytes() const { return start_rss_; }

 private:
  int64_t start_rss_ = 0;
};

}  // namespace tda
