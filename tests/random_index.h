// Gradient indexes of random rows for the storage-layer tests (index_storage_test,
// index_parts_test): what IndexWriter writes and GradientIndex must read back or refuse. The
// rows are random, so they prove the storage layer, not the gradients stored in it.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <string>
#include <vector>

#include "index/index_writer.h"
#include "index/manifest.h"

namespace tda::testing {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

struct Built {
  RowMatrix rows;
  std::vector<SampleRecord> samples;
};

// The files the index builder writes before the gradients: factors and the model.
void WriteCallerFiles(const std::string& dir, int64_t dim);

// The descriptive manifest fields of an index of `dim` dims (two layers).
Manifest Descriptive(int64_t dim);

// Builds an index of `n` random rows, appended in uneven chunks across shard boundaries.
Built BuildRandomIndex(const std::string& dir, int64_t n, int64_t dim, int64_t rows_per_shard,
                       uint32_t seed = 1);

// Replaces the file's contents.
void Overwrite(const std::string& path, const std::string& contents);
// Flips one bit of the byte at `offset`.
void FlipByte(const std::string& path, size_t offset);

}  // namespace tda::testing
