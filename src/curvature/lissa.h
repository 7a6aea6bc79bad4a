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
// Usable without tuning: the default curvature is Gauss-Newton (positive semi-definite, so
// any damping > 0 converges; the Hessian of a non-convex model is indefinite and converges
// only with damping above its most negative eigenvalue); scale 0 means "estimate it":
// 1.25 x (top eigenvalue + damping), the top eigenvalue from power iteration on the
// recursion's own batch size (EstimateLissaScale); and each repeat stops once the residual of every column,
// |v - (C + damping) x| / |v| (which is exactly |h_t - h_{t-1}| / |v|), falls to `tolerance`,
// or after `depth` steps.
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
#include "curvature/lissa_options.h"
#include "curvature/preconditioner.h"
#include "data/dataset.h"
#include "model/model.h"

namespace tda {


// The largest-magnitude eigenvalue of the curvature of the mean loss over `batch` (positive
// for Gauss-Newton), by `iterations` steps of power iteration from a fixed pseudo-random start:
// the same model, batch and curvature give the same figure. It converges from below.
[[nodiscard]] absl::StatusOr<double> EstimateTopEigenvalue(const Model& model, const Batch& batch,
                                                           Curvature curvature,
                                                           int iterations = 30);

// The scale LiSSA uses when options.scale is 0: 1.25 x (|top eigenvalue| + damping). The top
// eigenvalue is estimated on the whole training set (2048 rows drawn with options.seed when
// it is larger) for full-batch LiSSA, and as the largest over 8 random batches of
// options.batch_size rows for stochastic LiSSA, whose small batches have larger ones.
// kInvalidArgument for an empty data set.
[[nodiscard]] absl::StatusOr<double> EstimateLissaScale(const Model& model, const Dataset& data,
                                                        const LissaOptions& options);

class LissaPreconditioner : public Preconditioner {
 public:
  // kInvalidArgument for bad options, an empty data set or one whose features do not match
  // the model's input. A scale of 0 is replaced by EstimateLissaScale's (see options()).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<LissaPreconditioner>> Create(const Model& model,
                                                                     const Dataset& data,
                                                                     const LissaOptions& options);

  Method method() const override { return Method::kLissa; }
  // kFailedPrecondition when the recursion diverges (see the file comment). An estimated scale
  // is first raised 4x, up to 3 times, restarting the repeat; a given scale never changes.
  [[nodiscard]] absl::StatusOr<Eigen::MatrixXd> Apply(const Eigen::MatrixXd& grads) const override;
  const LissaOptions& options() const { return options_; }  // with the scale estimated

 private:
  LissaPreconditioner(const Model& model, const Dataset& data, const LissaOptions& options,
                      bool scale_estimated)
      : model_(model), data_(data), options_(options), scale_estimated_(scale_estimated) {}
  // One repeat (r) of the recursion at scale s: h_depth (or h_t at the tolerance);
  // kFailedPrecondition when it diverges.
  [[nodiscard]] absl::StatusOr<Eigen::MatrixXd> Recurse(const Eigen::MatrixXd& grads, double s, int64_t r) const;
  const Model& model_;
  const Dataset& data_;
  LissaOptions options_;
  bool scale_estimated_;
};

}  // namespace tda
