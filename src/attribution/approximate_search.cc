#include "attribution/approximate_search.h"

#include "absl/strings/str_cat.h"

namespace tda {

absl::Status ValidateApproximateSearch(const ApproximateSearch& search, int64_t top_k,
                                       bool return_scores, bool group_by_document) {
  if (!search.enabled) return absl::OkStatus();
  if (return_scores || group_by_document) {
    return absl::InvalidArgumentError(
        absl::StrCat("approximate search scores only the ANN's candidate rows, so it cannot give ",
                     return_scores ? "return_scores" : "group_by_document",
                     " (every row's score); ask for it without approximate search"));
  }
  if (search.candidates != 0 &&
      (search.candidates < top_k || search.candidates > kMaxApproximateCandidates)) {
    return absl::InvalidArgumentError(
        absl::StrCat("approximate candidates must be in [top_k = ", top_k, ", ",
                     kMaxApproximateCandidates, "] (0: 10 x top_k), got ", search.candidates));
  }
  if (search.nprobe < 0 || search.ef_search < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("approximate nprobe and ef_search must be >= 0 (0: the default), got ",
                     search.nprobe, " and ", search.ef_search));
  }
  return absl::OkStatus();
}

}  // namespace tda
