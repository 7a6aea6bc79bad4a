// A gradient index opened for reading: manifest, sample metadata, and the N x dim gradient rows
// (shards mmapped read-only). Opening checks the format version and every file's size; with
// Verify::kFull it also checks every file's XXH3 checksum. Any mismatch is kDataLoss naming the
// file; a missing manifest is kNotFound ("no index at DIR"). Immutable and thread-safe once open.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <Eigen/Core>

#include "absl/status/statusor.h"
#include "index/index_writer.h"
#include "index/manifest.h"

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
  const SampleRecord& sample(int64_t row) const { return samples_[static_cast<size_t>(row)]; }
  // Row of a training sample id, or -1.
  int64_t FindRow(const std::string& id) const;

  // Scores of every row against each query: rows() x Q = R * queries, where queries is dim x Q.
  // REQUIRES queries.rows() == dim(); otherwise returns an empty 0 x 0 matrix. Multithreaded
  // (OpenMP) over row blocks.
  Eigen::MatrixXf Score(const Eigen::MatrixXf& queries) const;
  // Pointer to row `row` (dim floats), valid while the index lives; nullptr if out of range.
  const float* row(int64_t row) const;

 private:
  GradientIndex() = default;
  struct Shard {
    const float* data = nullptr;
    size_t mapped_bytes = 0;
    int64_t row_begin = 0, row_end = 0;
  };
  std::string dir_;
  Manifest manifest_;
  std::vector<SampleRecord> samples_;
  std::unordered_map<std::string, int64_t> row_of_id_;
  std::vector<Shard> shards_;
};

}  // namespace tda
