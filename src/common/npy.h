// NumPy .npy files (format versions 1.0-3.0, little-endian). Writing: atomically, so score
// vectors and matrices can be loaded with numpy.load. Reading: the file is memory-mapped
// read-only and its data viewed in place (no copy); callers convert what they need.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace tda {

// A float32 array of the given shape (row-major); shape {N} for a vector.
[[nodiscard]] absl::Status WriteNpyF32(const std::string& path, const std::vector<int64_t>& shape,
                                       const float* data);
// An int64 array ('<i8') of the given shape (row-major).
[[nodiscard]] absl::Status WriteNpyI64(const std::string& path, const std::vector<int64_t>& shape,
                                       const int64_t* data);

// A .npy file mapped into memory. Move-only; unmapped on destruction.
class NpyFile {
 public:
  // kNotFound when the file is missing; kInvalidArgument (naming the file) when it is not a
  // .npy file, its header is malformed, it is big-endian or its data is shorter than the
  // header's shape says. Any dtype is accepted here: check descr() yourself.
  [[nodiscard]] static absl::StatusOr<NpyFile> Open(const std::string& path);
  NpyFile(NpyFile&& other) noexcept;
  NpyFile& operator=(NpyFile&& other) noexcept;
  NpyFile(const NpyFile&) = delete;
  NpyFile& operator=(const NpyFile&) = delete;
  ~NpyFile();

  const std::string& path() const { return path_; }
  // The dtype as written in the header with '<' / '|' normalised away: "f4", "f8", "u1",
  // "i4", "i8", ...
  const std::string& dtype() const { return dtype_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  bool fortran_order() const { return fortran_order_; }
  int64_t item_size() const { return item_size_; }
  int64_t numel() const;
  // "(60000, 784)"
  std::string ShapeText() const;
  // The array's bytes (numel() * item_size()), little-endian, in the file's order.
  const unsigned char* data() const { return data_; }

 private:
  NpyFile() = default;
  std::string path_;
  std::string dtype_;
  std::vector<int64_t> shape_;
  bool fortran_order_ = false;
  int64_t item_size_ = 0;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  const unsigned char* data_ = nullptr;
};

}  // namespace tda
