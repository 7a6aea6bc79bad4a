#include "curvature/lissa_options.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace tda {

absl::Status ValidateLissaOptions(const LissaOptions& options) {
  if (!std::isfinite(options.damping) || options.damping < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("LiSSA damping must be a finite number >= 0, got ", options.damping));
  }
  if (!std::isfinite(options.scale) || options.scale < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "LiSSA scale must be a finite number > 0 (0 = estimate it), got ", options.scale));
  }
  if (!std::isfinite(options.tolerance) || options.tolerance < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("LiSSA tolerance must be a finite number >= 0 (0 = run every step), got ",
                     options.tolerance));
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

}  // namespace tda
