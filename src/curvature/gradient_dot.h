// No preconditioning: scores are plain gradient dot products (TracIn-style baseline), so users
// can see what curvature buys. Apply returns its input.
#pragma once

#include "curvature/preconditioner.h"

namespace tda {

class GradientDotPreconditioner : public Preconditioner {
 public:
  explicit GradientDotPreconditioner(int64_t dim) : dim_(dim) {}
  Method method() const override { return Method::kGradientDot; }
  [[nodiscard]] absl::StatusOr<Eigen::MatrixXd> Apply(const Eigen::MatrixXd& grads) const override;

 private:
  int64_t dim_;
};

}  // namespace tda
