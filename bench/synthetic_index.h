// A gradient index of generated rows for benchmarks that need more rows than a real model
// gives quickly: written with IndexWriter like a real build, with placeholder model and
// factor files (the benchmarks read the rows only, GradientIndex::Open with Verify::kSizes).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "index/row_dtype.h"

namespace tda::bench {

// Fills `count` rows of `dim` floats (row-major) starting at row `begin`.
using RowGenerator = std::function<void(int64_t begin, int64_t count, float* rows)>;

// Writes `rows` x `dim` rows stored as `dtype` into a fresh index at `dir` (replacing one
// there), in chunks of 8192 rows; samples are "row/<i>" of source "bench".
[[nodiscard]] absl::Status WriteSyntheticIndex(const std::string& dir, int64_t rows, int64_t dim,
                                               RowDType dtype, const RowGenerator& generate);

}  // namespace tda::bench
