// One rank's part of an index written by a data-parallel build (index/index_builder.h): the
// rows [first_row, end_row) it wrote as its own shard files, and its slice of the sample table.
// Rank 0 gathers every other rank's IndexPartSummary (as text) and lists their files in the one
// manifest it writes (IndexWriter::Finish).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "index/manifest.h"

namespace tda {

// Where a writer's rows go. The default is a whole index (rank 0 of 1).
struct IndexPart {
  int rank = 0;             // 0: the primary, which clears a stale index and writes the manifest
  int64_t first_row = 0;    // the part's first row in the whole index
  int64_t first_shard = 0;  // the number of its first shard file (grads-NNNNN)
};

struct IndexPartSummary {
  int rank = 0;
  int64_t first_row = 0;
  int64_t end_row = 0;
  std::vector<ShardEntry> shards;  // row ranges of the whole index
  FileEntry samples;               // the part's sample table (samples-part-NNNNN.tsv)
};

// "samples-part-NNNNN.tsv": the sample table of rank `rank`'s part until rank 0 merges it.
std::string SamplePartFileName(int rank);

// One line per fact ("part RANK FIRST END", "samples FILE BYTES XXH3", "shard FILE BYTES XXH3
// BEGIN END"): what ranks of one build send each other, never stored.
std::string IndexPartSummaryToText(const IndexPartSummary& part);
// kDataLoss naming `source` for a malformed line.
[[nodiscard]] absl::StatusOr<IndexPartSummary> IndexPartSummaryFromText(const std::string& text,
                                                                        const std::string& source);

}  // namespace tda
