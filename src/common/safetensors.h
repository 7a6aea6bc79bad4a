// Reader and writer for the safetensors format (the ML ecosystem's weight format): an 8-byte
// little-endian header length, a JSON header {"name": {"dtype", "shape", "data_offsets"}, ...,
// "__metadata__": {str: str}}, then the raw little-endian tensor bytes. Torch-free: callers
// convert to and from Eigen or torch themselves.
//
// The reader validates everything before trusting it (header length, JSON, dtypes, shapes vs
// byte ranges, overlapping or out-of-file ranges) and returns kDataLoss naming the file.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace tda {

enum class DType { kF64, kF32, kF16, kBF16, kI64, kI32, kU8 };

// Safetensors dtype name ("F32", "BF16", ...) and element size.
const char* DTypeName(DType dtype);
size_t DTypeSize(DType dtype);
[[nodiscard]] absl::StatusOr<DType> ParseDType(std::string_view name);

struct TensorView {
  DType dtype;
  std::vector<int64_t> shape;
  std::string_view bytes;  // Points into the owning SafetensorsFile.
  int64_t numel() const;
};

// A tensor's entry in a safetensors header.
struct TensorInfo {
  DType dtype;
  std::vector<int64_t> shape;
  int64_t bytes() const;  // numel * DTypeSize
};

// The tensor table of the safetensors file at `path` from its header alone (the data is not
// read), validated as SafetensorsFile::Parse validates it against the file's size: kNotFound
// for a missing file, kDataLoss naming it when malformed.
[[nodiscard]] absl::StatusOr<std::map<std::string, TensorInfo>> ReadSafetensorsTable(
    const std::string& path);

class SafetensorsWriter {
 public:
  // Copies `bytes` (numel(shape) * DTypeSize(dtype) bytes). Names must be unique.
  void Add(const std::string& name, DType dtype, std::vector<int64_t> shape, const void* data);
  void AddF64(const std::string& name, std::vector<int64_t> shape, const double* data) {
    Add(name, DType::kF64, std::move(shape), data);
  }
  void AddF32(const std::string& name, std::vector<int64_t> shape, const float* data) {
    Add(name, DType::kF32, std::move(shape), data);
  }
  void SetMetadata(const std::string& key, const std::string& value) { metadata_[key] = value; }

  std::string Serialize() const;
  [[nodiscard]] absl::Status WriteAtomically(const std::string& path) const;

 private:
  struct Entry {
    DType dtype;
    std::vector<int64_t> shape;
    std::string bytes;
  };
  std::map<std::string, Entry> tensors_;
  std::map<std::string, std::string> metadata_;
};

class SafetensorsFile {
 public:
  // `source` names the file in error messages.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Parse(std::string bytes,
                                                                              std::string source);
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Read(
      const std::string& path);

  // kNotFound naming the tensor and file when absent.
  [[nodiscard]] absl::StatusOr<TensorView> Get(const std::string& name) const;
  // Get() plus a check of dtype and shape; kDataLoss when they differ.
  [[nodiscard]] absl::StatusOr<TensorView> Get(const std::string& name, DType dtype,
                                 const std::vector<int64_t>& shape) const;
  bool Has(const std::string& name) const { return tensors_.count(name) > 0; }
  std::vector<std::string> names() const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::string& source() const { return source_; }

 private:
  std::string source_;
  std::string bytes_;
  std::map<std::string, TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace tda
