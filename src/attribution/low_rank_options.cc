#include "attribution/low_rank_options.h"

#include "absl/strings/str_cat.h"

namespace tda {

absl::Status ValidateLowRankQueries(const LowRankQueries& low_rank, int64_t top_k,
                                    bool return_scores, bool group_by_document, bool approximate) {
  if (low_rank.rank < 0 || low_rank.rank > kMaxQueryRank) {
    return absl::InvalidArgumentError(absl::StrCat("query_rank must be in [0, ", kMaxQueryRank,
                                                   "] (0: exact), got ", low_rank.rank));
  }
  if (!low_rank.enabled()) {
    if (low_rank.candidates != 0) {
      return absl::InvalidArgumentError(absl::StrCat("low_rank_candidates (", low_rank.candidates,
                                                     ") needs query_rank > 0; set both"));
    }
    return absl::OkStatus();
  }
  if (return_scores || group_by_document) {
    return absl::InvalidArgumentError(absl::StrCat(
        "query_rank scores only each query's candidate rows exactly, so it cannot give ",
        return_scores ? "return_scores" : "group_by_document",
        " (every row's exact score); ask for it without query_rank"));
  }
  if (approximate) {
    return absl::InvalidArgumentError(
        "query_rank and approximate search are two ways to pick candidate rows; use one");
  }
  if (low_rank.candidates != 0 &&
      (low_rank.candidates < top_k || low_rank.candidates > kMaxLowRankCandidates)) {
    return absl::InvalidArgumentError(
        absl::StrCat("low_rank_candidates must be in [top_k = ", top_k, ", ", kMaxLowRankCandidates,
                     "] (0: 10 x top_k), got ", low_rank.candidates));
  }
  return absl::OkStatus();
}

}  // namespace tda
