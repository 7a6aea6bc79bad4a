// The one interface every inverse-curvature approximation implements (faiss-style: callers never
// branch on the kind). A preconditioner maps full-parameter gradients g to (H + lambda I)^-1 g,
// where H approximates the curvature of the mean training loss (Gauss-Newton / Fisher) and the
// damping lambda is the implementation's own (see each class).
//
// Thread-safety: Apply is const and safe to call concurrently.
#pragma once

#include <string>
#include <string_view>

#include <Eigen/Core>

#include "absl/status/statusor.h"

namespace tda {

enum class Method { kEkfac, kKfac, kGradientDot, kExact, kLissa };

const char* MethodName(Method method);  // "ekfac", "kfac", "gradient-dot", "exact", "lissa"
[[nodiscard]] absl::StatusOr<Method> ParseMethod(std::string_view name);

class Preconditioner {
 public:
  virtual ~Preconditioner() = default;
  virtual Method method() const = 0;
  // grads: D x Q, one full gradient (ParamLayout order) per column. Returns D x Q.
  // kInvalidArgument when D does not match or the input holds NaN/Inf.
  [[nodiscard]] virtual absl::StatusOr<Eigen::MatrixXd> Apply(const Eigen::MatrixXd& grads) const = 0;
};

}  // namespace tda
