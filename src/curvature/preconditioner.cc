#include "curvature/preconditioner.h"

#include "absl/strings/str_cat.h"

namespace tda {

const char* MethodName(Method method) {
  switch (method) {
    case Method::kEkfac:
      return "ekfac";
    case Method::kKfac:
      return "kfac";
    case Method::kGradientDot:
      return "gradient-dot";
    case Method::kExact:
      return "exact";
    case Method::kLissa:
      return "lissa";
  }
  return "unknown";
}

absl::StatusOr<Method> ParseMethod(std::string_view name) {
  for (Method m :
       {Method::kEkfac, Method::kKfac, Method::kGradientDot, Method::kExact, Method::kLissa}) {
    if (name == MethodName(m)) return m;
  }
  if (name == "gradient_dot") return Method::kGradientDot;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown preconditioning method '", std::string(name),
                   "'; expected one of ekfac, kfac, gradient-dot, exact, lissa"));
}

}  // namespace tda
