// The damping and LiSSA flags of the commands that attribute (tda query), written once:
//   --damping X            lambda = X x mean eigenvalue (per layer for ekfac / kfac; of the
//                          whole model for lissa / exact); no effect on gradient-dot
//   --absolute-damping X   lambda = X for every layer and every method (not with --damping)
//   --lissa-scale S        0 = estimate it (1.25 x (top eigenvalue + lambda), power iteration)
//   --lissa-depth N        most recursion steps per repeat
//   --lissa-tolerance T    stop a repeat at relative residual T (0 = run every step)
//   --lissa-repeats R      independent recursions averaged
//   --lissa-batch B        training rows per curvature product (0 = all)
//   --lissa-curvature C    gauss-newton (default) or hessian; also the matrix exact inverts
// The defaults are LissaOptions' (curvature/lissa.h) and the index's damping.
#pragma once

#include "attribution/attributor.h"
#include "common/flags.h"

namespace tda {

void AddCurvatureFlags(FlagParser& flags);

// Sets options->damping (when given), options->lissa and options->exact_curvature from the
// parsed flags. kInvalidArgument naming the flag for a bad value or both damping flags.
[[nodiscard]] absl::Status CurvatureFromFlags(const FlagParser& flags, AttributeOptions* options);

}  // namespace tda
