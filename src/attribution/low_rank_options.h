// The options of low-rank query batches (AttributeRequest.query_rank, low_rank_candidates; the
// algorithm is attribution/low_rank_queries.h) and their validation, which needs no index:
// tda-server runs it with the rest of the request's checks before a call queues
// (query_validation.h), and the request fuzzer links it (no FAISS, no LibTorch here).
#pragma once

#include <cstdint>

#include "absl/status/status.h"

namespace tda {

inline constexpr int64_t kMaxQueryRank = 1024;  // = kMaxQueriesPerRequest: no batch needs more
inline constexpr int64_t kMaxLowRankCandidates = 100000;

struct LowRankQueries {
  int64_t rank = 0;        // 0: off (every query scored exactly); r > 0: rank min(r, queries)
  int64_t candidates = 0;  // rows re-scored exactly per query and sign; 0: 10 x top_k
  bool enabled() const { return rank > 0; }
};

// kInvalidArgument naming the option when `low_rank` asks for what it cannot give: a rank
// outside [0, kMaxQueryRank], candidates outside [top_k, kMaxLowRankCandidates] (0: the
// default) or without a rank, or a rank together with return_scores, group_by_document (they
// need every row's exact score) or approximate search (another candidate source).
[[nodiscard]] absl::Status ValidateLowRankQueries(const LowRankQueries& low_rank, int64_t top_k,
                                                  bool return_scores, bool group_by_document,
                                                  bool approximate);

}  // namespace tda
