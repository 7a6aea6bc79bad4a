#include "curvature/gradient_dot.h"

#include "absl/strings/str_cat.h"

namespace tda {

absl::StatusOr<Eigen::MatrixXd> GradientDotPreconditioner::Apply(
    const Eigen::MatrixXd& grads) const {
  if (grads.rows() != dim_) {
    return absl::InvalidArgumentError(absl::StrCat("gradient-dot preconditioner: expected ", dim_,
                                                   " gradient rows, got ", grads.rows()));
  }
  if (!grads.allFinite()) {
    return absl::InvalidArgumentError("gradient-dot preconditioner: gradients hold NaN or Inf");
  }
  return grads;
}

}  // namespace tda
