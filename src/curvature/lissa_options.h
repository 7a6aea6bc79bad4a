// LiSSA's parameters (curvature/lissa.h) and their validation, apart from the recursion so
// that request validation (attribution/query_validation.h) and its fuzzer can check them
// without the model code.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "common/progress.h"
#include "model/model.h"

namespace tda {

struct LissaOptions {
  double damping = 0.01;  // lambda >= 0: the result approximates (C + lambda I)^-1 v
  // s: must exceed half the largest eigenvalue of C_t + lambda; 0 = estimated at Create.
  double scale = 0;
  int64_t depth = 10000;     // recursion steps per repeat at most, >= 1
  double tolerance = 1e-3;   // stop a repeat at this relative residual; 0 = run `depth` steps
  int64_t repeats = 1;       // independent recursions averaged, >= 1
  int64_t batch_size = 128;  // training samples per curvature product; 0 = the whole set
  uint64_t seed = 0;         // batch sampling
  Curvature curvature = Curvature::kGaussNewton;
  // Told ("lissa", step, depth, "repeat r of R, residual x (tolerance t)") as the recursion
  // runs (every step for the first ten, then every tenth); may be empty. Called on the thread
  // of Apply: a preconditioner applied concurrently calls it concurrently.
  ProgressFn progress;
};

// kInvalidArgument naming the first bad field (negative or non-finite damping, scale or
// tolerance, zero depth or repeats, negative batch size).
[[nodiscard]] absl::Status ValidateLissaOptions(const LissaOptions& options);

}  // namespace tda
