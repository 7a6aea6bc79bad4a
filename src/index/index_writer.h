// Writes a gradient index directory. Usage: Create (removes any old manifest first, so an
// interrupted build never leaves an index that opens), AppendRows any number of times (rows are
// streamed into shard files, each written temp + fsync + rename with a running XXH3, and their
// sample records into the sample table the same way), then Finish with the remaining fields,
// which publishes the sample table and, last, the manifest. Memory does not grow with the rows
// beyond an 8-byte hash of each id (the duplicate check).
// Rows arrive as f32 and are stored as `dtype` (bf16 / f16 rounded to nearest even), in shards
// named grads-NNNNN.<dtype>. Not thread-safe.
//
// A data-parallel build (index/index_builder.h) has one writer per rank over the same
// directory: rank 0's Create clears it, then each other rank's writer (Create with its
// IndexPart) writes its rows' shards and a sample-table part, and FinishPart returns what it
// wrote; rank 0's Finish checks every part's files and merges them into the one manifest.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/atomic_file.h"
#include "common/checksum.h"
#include "index/index_part.h"
#include "index/manifest.h"
#include "index/row_dtype.h"

namespace tda {

struct SampleRecord {
  std::string id;
  std::string source;
  int32_t label = -1;
  std::string preview;  // short human-readable description (no tabs or newlines)
};

class IndexWriter {
 public:
  // `part`: which rows of a distributed build this writer holds; rank 0 (the default) removes
  // an old manifest and stale build files first, the other ranks remove nothing.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<IndexWriter>> Create(
      const std::string& dir, int64_t dim, int64_t rows_per_shard = 1 << 16,
      RowDType dtype = RowDType::kF32, const IndexPart& part = {});
  // Continues an existing index (tda index append) without invalidating it: its manifest,
  // shards and `samples` (one per existing row) are kept; new rows go into new shards. Finish
  // then writes a sample table named after the manifest's generation and the new manifest, and
  // only after that removes the sample table the old manifest listed. Until then the old index
  // stays valid (the new files are not listed by it).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<IndexWriter>> OpenForAppend(
      const std::string& dir, const Manifest& current, std::vector<SampleRecord> samples,
      int64_t rows_per_shard = 1 << 16);
  ~IndexWriter();

  // `rows` is count x dim float32, row-major; `samples` has count entries. Stored as dtype().
  [[nodiscard]] absl::Status AppendRows(const float* rows,
                                        const std::vector<SampleRecord>& samples);

  // Files already written into the directory by the caller (factors, model) are checksummed
  // here: pass their paths relative to dir. `manifest` supplies the descriptive fields (and the
  // tombstone entry and generation); rows, dim, shards and the file entries are filled in. The
  // sample table is samples.tsv at generation 0, samples-NNNNN.tsv after appends.
  // Rank 0 of a distributed build passes the other ranks' parts, in rank order: their rows
  // must follow this writer's, their shard files must exist with the sizes given, and their
  // sample tables must match their checksums; the tables are merged into this one.
  [[nodiscard]] absl::Status Finish(Manifest manifest,
                                    const std::vector<IndexPartSummary>& parts = {});
  // A rank > 0 of a distributed build: commits its last shard and its sample-table part.
  [[nodiscard]] absl::StatusOr<IndexPartSummary> FinishPart();

  const std::string& dir() const { return dir_; }
  int64_t rows() const { return rows_; }
  RowDType dtype() const { return dtype_; }

 private:
  IndexWriter() = default;
  [[nodiscard]] absl::Status CloseShard();
  [[nodiscard]] absl::Status OpenSampleTable();
  // Streams the records' lines into the sample table (nothing per row is kept but an 8-byte
  // hash of its id, for the duplicate check).
  [[nodiscard]] absl::Status AppendSamples(const std::vector<SampleRecord>& samples);
  // The same for table lines already formatted ("id\tsource\tlabel\tpreview\n" each).
  [[nodiscard]] absl::Status AppendSampleLines(const std::string& lines);
  // Finish of rank 0: appends the parts' rows and sample tables (see Finish).
  [[nodiscard]] absl::Status MergeParts(const std::vector<IndexPartSummary>& parts);
  std::string ShardFileName(size_t shard) const;
  // kInvalidArgument when an id whose hash repeated occurs twice in the table at `table_path`.
  [[nodiscard]] absl::Status CheckRepeatedIds(const std::string& table_path) const;
  // Commits the streamed table, checks its ids, and renames it to `name` (the manifest lists it
  // only after that); a retried Finish renames it again if the name changed.
  [[nodiscard]] absl::Status PublishSampleTable(const std::string& name);

  std::string dir_;
  int64_t dim_ = 0;
  int64_t rows_per_shard_ = 0;
  RowDType dtype_ = RowDType::kF32;
  std::vector<char> converted_;  // rows converted to dtype_ before they are written
  int64_t rows_ = 0;
  std::unique_ptr<AtomicFileWriter> samples_file_;  // the sample table, streamed
  std::unique_ptr<Xxh3Stream> samples_hash_;
  absl::flat_hash_set<uint64_t> id_hashes_;
  absl::flat_hash_set<std::string> repeated_ids_;  // ids whose hash was seen before
  uint64_t table_bytes_ = 0;
  std::string table_file_;    // where the committed table is now
  absl::Status table_check_;  // of the committed table's ids
  std::vector<ShardEntry> shards_;
  std::unique_ptr<AtomicFileWriter> shard_;
  std::unique_ptr<Xxh3Stream> shard_hash_;
  int64_t shard_begin_ = 0;
  IndexPart part_;
  std::vector<std::string> merged_tables_;  // other ranks' sample tables, removed after Finish
  bool closed_ = false;                // after Finish, or after a failed AppendRows
  std::string replaced_samples_file_;  // OpenForAppend: removed once the new manifest is in
};

// Name of the sample table of an index generation: "samples.tsv" for 0, else
// "samples-NNNNN.tsv".
std::string SamplesFileName(int64_t generation);
// Name of the deleted-rows file of an index generation: "tombstones-NNNNN.txt".
std::string TombstonesFileName(int64_t generation);

// Checksums an existing file of the index directory into a FileEntry.
[[nodiscard]] absl::StatusOr<FileEntry> DescribeFile(const std::string& dir, const std::string& relative_path);

}  // namespace tda
