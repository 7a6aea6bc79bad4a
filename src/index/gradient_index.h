// A gradient index opened for reading: manifest, sample metadata, and the N x dim gradient rows
// (shards mmapped read-only). Opening checks the format version and every file's size; with
// Verify::kFull it also checks every file's XXH3 checksum. Any mismatch is kDataLoss naming the
// file; a missing manifest is kNotFound ("no index at DIR"). Rows may be stored as f32, bf16 or
// f16 (manifest "dtype"); Score, Scan and CopyRow always answer in f32. Deleted rows (the
// manifest's tombstone file) keep their row numbers but score NaN and never appear in a top-k
// or a per-source total. Immutable and thread-safe once open.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <Eigen/Core>

#include "absl/status/statusor.h"
#include "common/cancellation.h"
#include "common/progress.h"
#include "index/index_writer.h"
#include "index/manifest.h"
#include "index/row_dtype.h"

namespace tda {

// One scored row of a scan's top-k.
struct ScoredRow {
  int64_t row = 0;
  float score = 0;
};

class GradientIndex;

// Another index over the same rows whose scores add to the scanned one's (an ensemble member:
// attribution/ensemble_scan.h).
struct ScanTerm {
  const GradientIndex* index = nullptr;
  const Eigen::MatrixXf* queries = nullptr;  // index->dim() x Q
  const float* row_scales = nullptr;         // as ScanOptions::row_scales, for this term
};

struct ScanOptions {
  int64_t top_k = 0;         // proponents and opponents kept per query (0: none)
  bool source_sums = false;  // per-source sums of the scores
  bool keep_scores = false;  // the full rows() x Q score matrix
  // rows() factors (may be null): row r's scores are multiplied by row_scales[r] before they
  // are ranked, summed or kept (unit normalisation: attribution/unit_norm.h).
  const float* row_scales = nullptr;
  // Checked before every row block (may be null): once it fails the scan stops scoring, and
  // ScanResult::status carries its status.
  const Cancellation* cancellation = nullptr;
  // score(r, q) = scale[r] R[r] . queries[:, q] + the same of every term. Every term's index
  // must have this index's rows and shard boundaries, and queries with Q columns (else the
  // result's status is kInvalidArgument); this index's deleted rows are the scan's.
  std::vector<ScanTerm> terms;
};

// What one pass over the index computes, per query q (a column of the queries).
struct ScanResult {
  // OK, or the cancellation's status when the scan stopped early (the rest is then partial).
  absl::Status status;
  // Up to top_k strictly positive scores, descending (proponents), and up to top_k strictly
  // negative scores, ascending (opponents): fewer when fewer rows score above (below) zero, so
  // a row is never in both lists. Ties go to the lower row. Deleted rows, NaN and zero scores
  // are never ranked.
  std::vector<std::vector<ScoredRow>> proponents, opponents;
  // source_sums[q][s]: sum (in double) of the scores of the live rows of source s
  // (GradientIndex::sources()[s]). Threads add their blocks in a fixed order, so a scan with
  // the same thread count gives the same bits.
  std::vector<std::vector<double>> source_sums;
  // rows() x Q, deleted rows NaN; empty unless ScanOptions::keep_scores.
  Eigen::MatrixXf scores;
};

class GradientIndex {
 public:
  enum class Verify { kSizes, kFull };
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<GradientIndex>> Open(const std::string& dir,
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

  // Distinct data sources of the rows (samples.tsv), in order of first appearance, and how
  // many rows of each are not deleted.
  const std::vector<std::string>& sources() const { return sources_; }
  int64_t live_rows_of_source(size_t s) const { return live_rows_per_source_[s]; }
  bool is_deleted(int64_t row) const { return !deleted_.empty() && deleted_[row] != 0; }
  int64_t deleted_rows() const { return deleted_count_; }

  // Scores of every row against each query: rows() x Q = R * queries, where queries is dim x Q
  // (deleted rows NaN). REQUIRES queries.rows() == dim(); otherwise returns an empty 0 x 0
  // matrix. Scan(queries, {.keep_scores = true}).scores.
  Eigen::MatrixXf Score(const Eigen::MatrixXf& queries) const;
  // One pass over the rows computing, per query, what `options` asks for. Multithreaded
  // (OpenMP) over blocks of rows (at most 4096 rows, fewer for wide rows and many queries, so
  // that a block is a few milliseconds of work and a cancellation is seen quickly); each block is scored by ScoreRows (index/block_scorer.h:
  // GEMM, or a fused bf16/f16 kernel for small batches), and its scores go into per-thread
  // top-k heaps and per-source sums while still in cache. REQUIRES queries.rows() == dim();
  // otherwise returns an empty result.
  ScanResult Scan(const Eigen::MatrixXf& queries, const ScanOptions& options) const;
  // Copies row `row` (dim() values, converted to f32) into `out`. Returns false, writing
  // nothing, when `row` is out of range.
  bool CopyRow(int64_t row, float* out) const;
  // Row `row` as dim() f32 values without a copy where it can: the mapped row itself in an f32
  // index, else converted into `buffer` (dim() floats). nullptr when `row` is out of range.
  const float* RowF32(int64_t row, float* buffer) const;

 private:
  GradientIndex() = default;
  // The stored bytes of row `row`, or nullptr when it is out of range.
  const char* StoredRow(int64_t row) const;
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
  std::vector<std::string> sources_;
  std::vector<int32_t> source_of_row_;  // index into sources_
  std::vector<int64_t> live_rows_per_source_;
  std::vector<uint8_t> deleted_;        // per row, empty when no row is deleted
  int64_t deleted_count_ = 0;
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
