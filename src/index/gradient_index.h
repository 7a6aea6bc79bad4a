// A gradient index opened for reading: manifest, sample metadata, and the N x dim gradient rows
// (shards mmapped read-only). Opening checks the format version and every file's size; with
// Verify::kFull it also checks every file's XXH3 checksum. Any mismatch is kDataLoss naming the
// file; a missing manifest is kNotFound ("no index at DIR"). Rows may be stored as f32, bf16 or
// f16 (manifest "dtype"); Score and CopyRow always answer in f32. Immutable and thread-safe once
// open.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <Eigen/Core>

#include "absl/status/statusor.h"
#include "common/progress.h"
#include "index/index_writer.h"
#include "index/manifest.h"
#include "index/row_dtype.h"

namespace tda {

class GradientIndex {
 public:
  enum class Verify { kSizes, kFull };
  static absl::StatusOr<std::unique_ptr<GradientIndex>> Open(const std::string& dir,
                                                             Verify verify = Verify::kFull);
  ~GradientIndex();

  const std::string& dir() const { return dir_; }
  const Manifest& manifest() const { return manifest_; }
  int64_t rows() const { return manifest_.rows; }
  int64_t dim() const { return manifest_.dim; }
  RowDType dtype() const { return dtype_; }
  const SampleRecord& sample(int64_t row) const { return samples_[static_cast<size_t>(row)]; }
  // Row of a training sample id, or -1.
  int64_t FindRow(const std::string& id) const;

  // Scores of every row against each query: rows() x Q = R * queries, where queries is dim x Q.
  // REQUIRES queries.rows() == dim(); otherwise returns an empty 0 x 0 matrix. Multithreaded
  // (OpenMP) over row blocks. bf16 / f16 rows are converted to f32 in tiles of a few hundred
  // rows (a per-thread buffer that stays in cache) and scored by the same GEMM, so the scores
  // are exact f32 products of the stored (rounded) rows.
  Eigen::MatrixXf Score(const Eigen::MatrixXf& queries) const;
  // Copies row `row` (dim() values, converted to f32) into `out`. Returns false, writing
  // nothing, when `row` is out of range.
  bool CopyRow(int64_t row, float* out) const;

 private:
  GradientIndex() = default;
  struct Shard {
    const char* data = nullptr;  // mmapped rows, dtype_ elements
    size_t mapped_bytes = 0;
    int64_t row_begin = 0, row_end = 0;
  };
  std::string dir_;
  Manifest manifest_;
  RowDType dtype_ = RowDType::kF32;
  std::vector<SampleRecord> samples_;
  std::unordered_map<std::string, int64_t> row_of_id_;
  std::vector<Shard> shards_;
};

// One file's outcome in VerifyIndex.
struct FileCheck {
  std::string file;     // relative to the index directory, e.g. "grads-00001.bf16"
  uint64_t bytes = 0;   // size recorded in the manifest
  absl::Status status;  // OK, or kDataLoss / kInternal naming the file
};

// Full verification of the index at `dir` (what `tda index verify` runs): reads the manifest
// (a missing or corrupt manifest is returned at once, with no file results), then checks every
// file it lists for existence, size and XXH3, continuing past a bad file so that every file
// gets a FileCheck through `on_file` (may be empty), then parses the sample table. Progress is
// reported as ("verify", bytes hashed, total bytes). Returns OK if all is well, else the first
// error (the same code and message GradientIndex::Open with Verify::kFull would give).
[[nodiscard]] absl::Status VerifyIndex(const std::string& dir,
                                       const std::function<void(const FileCheck&)>& on_file = {},
                                       const ProgressFn& progress = {});

}  // namespace tda
