// Merging the answers of a sharded index's shards (ShardService.ScoreShard, global row
// numbers) into the answer one server of the whole index gives: top-k proponents by score
// descending and opponents ascending, ties to the lower row (as GradientIndex::Scan ranks),
// per-source sums and counts added in shard order (sources in order of first appearance),
// and the score vectors concatenated at each shard's first row. Exact: every shard's top-k
// holds every row of the global top-k that lies in it. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "attribution/attributor.h"
#include "tda/v1/shard.pb.h"

namespace tda {

// One shard's answer to a call: its rows [first_row, first_row + rows) and results.
struct ShardAnswer {
  int64_t first_row = 0;
  int64_t rows = 0;
  const v1::ScoreShardResponse* response = nullptr;
};

// Fills the proponents, opponents, source totals and (return_scores: total_rows floats, NaN
// for rows of shards absent from `answers`) scores of each of `results` from `answers`, in
// row order. kInternal when an answer has the wrong number of results or of scores.
[[nodiscard]] absl::Status MergeShardAnswers(const std::vector<ShardAnswer>& answers, int64_t top_k,
                                             bool return_scores, int64_t total_rows,
                                             std::vector<QueryResult>* results);

}  // namespace tda
