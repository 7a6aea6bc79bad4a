// LiSSA (Agarwal et al. 2017; Koh & Liang 2017): inverse-curvature-vector products by a
// stochastic Neumann series of exact curvature-vector products (Model::CurvatureProduct, double
// backward), so no D x D matrix is ever formed. For each column v of the input:
//   h_0 = v,   h_t = v + (1 - d) h_{t-1} - C_t h_{t-1} / s,   result = h_depth / s,
// averaged over `repeats` independent recursions, where C_t is the curvature of the mean
// training loss on a random batch (the whole training set when batch_size is 0 or >= N) and
// d = damping / s. The fixed point is (C + damping I)^-1 v: `damping` means the same lambda
// as for every other preconditioner (the internal d is the classic LiSSA "damping" divided by
// the scale). The recursion converges when every eigenvalue of C_t + damping lies in (0, 2s);
// its error shrinks like (1 - (l_min + damping) / s)^depth.
//
// Divergence: while the step map is non-expansive, |h_t| <= (t + 1) |v|. A column whose norm
// passes twice that bound, or turns NaN/Inf, means the scale is too small (or the curvature is
// indefinite beyond the damping): Apply then fails with kFailedPrecondition naming the
// iteration and a larger scale to try, never returning garbage.
//
// Thread-safety: Apply is const and safe to call concurrently (its random state is local).
// The model and data set must outlive the preconditioner.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "curvature/preconditioner.h"
#include "data/dataset.h"
#include "model/model.h"

namespace tda {

struct LissaOptions {
  double damping = 0.01;     // lambda >= 0: the result approximates (C + lambda I)^-1 v
  double scale = 10;         // s > 0: must exceed half the largest eigenvalue of C_t + lambda
  int64_t depth = 1000;      // recursion steps per repeat, >= 1
  int64_t repeats = 1;       // independent recursions averaged, >= 1
  int64_t batch_size = 128;  // training samples per curvature product; 0 = the whole set
  uint64_t seed = 0;         // batch sampling
  Curvature curvature = Curvature::kHessian;
};

// kInvalidArgument naming the first bad field (negative or non-finite damping, non-positive
// scale, zero depth or repeats, negative batch size).
absl::Status ValidateLissaOptions(const LissaOptions& options);

class LissaPreconditioner : public Preconditioner {
 public:
  // kInvalidArgument for bad options, an empty data set or one whose features do not match
  // the model's input.
  static absl::StatusOr<std::unique_ptr<LissaPreconditioner>> Create(const Model& model,
                                                                     const Dataset& data,
                                                                     const LissaOptions& options);

  Method method() const override { return Method::kLissa; }
  // kFailedPrecondition when the recursion diverges (see the file comment).
  absl::StatusOr<Eigen::MatrixXd> Apply(const Eigen::MatrixXd& grads) const override;
  const LissaOptions& options() const { return options_; }

 private:
  LissaPreconditioner(const Model& model, const Dataset& data, const LissaOptions& options)
      : model_(model), data_(data), options_(options) {}
  const Model& model_;
  const Dataset& data_;
  LissaOptions options_;
};

// The smallest scale among 1, 10, 100, ... <= max_scale for which LiSSA with `options`
// (its scale ignored, one repeat) does not diverge on the columns of `probe`.
// kFailedPrecondition when every candidate diverges.
absl::StatusOr<double> ChooseLissaScale(const Model& model, const Dataset& data,
                                        const LissaOptions& options, const Eigen::MatrixXd& probe,
                                        double max_scale = 1e6);

}  // namespace tda
