// Writes NumPy .npy files (format version 1.0, little-endian), so score vectors and matrices
// can be loaded with numpy.load. Written atomically.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace tda {

// A float32 array of the given shape (row-major); shape {N} for a vector.
[[nodiscard]] absl::Status WriteNpyF32(const std::string& path, const std::vector<int64_t>& shape,
                                       const float* data);

}  // namespace tda
