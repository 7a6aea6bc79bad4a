#include "client/curvature_flags.h"

#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"

namespace tda {

void AddCurvatureFlags(FlagParser& flags) {
  const LissaOptions lissa;
  flags.AddDouble("damping", "X", 0.1,
                  "lambda = X x mean eigenvalue: per layer for ekfac and kfac, of the whole "
                  "model for lissa and exact; gradient-dot has none (default: the index's)");
  flags.AddDouble("absolute-damping", "X", 0,
                  "lambda = X for every layer and every method (instead of --damping)");
  flags.AddDouble("lissa-scale", "S", lissa.scale,
                  "lissa: the recursion's scale; 0 = estimate it, 1.25 x (top eigenvalue + "
                  "lambda) by power iteration");
  flags.AddInt("lissa-depth", "N", lissa.depth, "lissa: most recursion steps per repeat");
  flags.AddDouble("lissa-tolerance", "T", lissa.tolerance,
                  "lissa: stop a repeat once |v - (C + lambda) x| / |v| <= T (0 = every step)");
  flags.AddInt("lissa-repeats", "R", lissa.repeats, "lissa: independent recursions averaged");
  flags.AddInt("lissa-batch", "B", lissa.batch_size,
               "lissa: training rows per curvature product (0 = all of them, deterministic)");
  flags.AddString("lissa-curvature", "C", CurvatureName(lissa.curvature),
                  "lissa and exact: gauss-newton (positive semi-definite) or hessian (indefinite "
                  "for a non-convex model: needs damping above its most negative eigenvalue)");
}

absl::Status CurvatureFromFlags(const FlagParser& flags, AttributeOptions* options) {
  if (flags.IsSet("damping") && flags.IsSet("absolute-damping")) {
    return absl::InvalidArgumentError("give --damping or --absolute-damping, not both");
  }
  for (const char* name : {"damping", "absolute-damping"}) {
    if (!flags.IsSet(name)) continue;
    const double value = flags.GetDouble(name);
    if (!std::isfinite(value) || value < 0) {
      return absl::InvalidArgumentError(absl::StrCat("--", name, " must be >= 0, got ", value));
    }
    Damping damping;
    if (std::string(name) == "damping") {
      damping.relative = value;
    } else {
      damping.absolute = value;
    }
    options->damping = damping;
  }
  LissaOptions& lissa = options->lissa;
  lissa.scale = flags.GetDouble("lissa-scale");
  lissa.depth = flags.GetInt("lissa-depth");
  lissa.tolerance = flags.GetDouble("lissa-tolerance");
  lissa.repeats = flags.GetInt("lissa-repeats");
  lissa.batch_size = flags.GetInt("lissa-batch");
  const std::string curvature = flags.GetString("lissa-curvature");
  if (curvature == CurvatureName(Curvature::kGaussNewton)) {
    lissa.curvature = Curvature::kGaussNewton;
  } else if (curvature == CurvatureName(Curvature::kHessian)) {
    lissa.curvature = Curvature::kHessian;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--lissa-curvature must be gauss-newton or hessian, got '", curvature, "'"));
  }
  options->exact_curvature = lissa.curvature;
  absl::Status valid = ValidateLissaOptions(lissa);  // its damping is the default, valid
  if (!valid.ok()) return absl::InvalidArgumentError(valid.message());
  return absl::OkStatus();
}

}  // namespace tda
