#include "attribution/approximate_scan.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace tda {

absl::StatusOr<ApproximateTopK> ApproximateScan(const GradientIndex& index, const AnnIndex& ann,
                                                const Eigen::MatrixXf& queries, int64_t top_k,
                                                const ApproximateSearch& search) {
  const int64_t k =
      search.candidates > 0 ? search.candidates : std::min(kMaxApproximateCandidates, 10 * top_k);
  const AnnSearchParameters parameters{search.nprobe, search.ef_search};
  ASSIGN_OR_RETURN(const std::vector<std::vector<int64_t>> up, ann.Search(queries, k, parameters));
  const Eigen::MatrixXf negated = -queries;
  ASSIGN_OR_RETURN(const std::vector<std::vector<int64_t>> down,
                   ann.Search(negated, k, parameters));
  const auto by_score_then_row = [](const ScoredRow& a, const ScoredRow& b) {
    return a.score != b.score ? a.score > b.score : a.row < b.row;
  };
  ApproximateTopK result;
  result.proponents.resize(static_cast<size_t>(queries.cols()));
  result.opponents.resize(static_cast<size_t>(queries.cols()));
  Eigen::VectorXf row(index.dim());
  for (Eigen::Index q = 0; q < queries.cols(); ++q) {
    std::vector<int64_t> rows = up[q];
    rows.insert(rows.end(), down[q].begin(), down[q].end());
    std::sort(rows.begin(), rows.end());
    rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
    std::vector<ScoredRow> positive, negative;
    for (const int64_t r : rows) {
      if (index.is_deleted(r) || !index.CopyRow(r, row.data())) continue;
      const float score = row.dot(queries.col(q));
      if (score > 0) positive.push_back({r, score});
      if (score < 0) negative.push_back({r, -score});  // ranked by magnitude, sign restored below
    }
    for (std::vector<ScoredRow>* list : {&positive, &negative}) {
      const size_t keep = std::min(list->size(), static_cast<size_t>(top_k));
      std::partial_sort(list->begin(), list->begin() + keep, list->end(), by_score_then_row);
      list->resize(keep);
    }
    for (ScoredRow& hit : negative) hit.score = -hit.score;
    result.proponents[q] = std::move(positive);
    result.opponents[q] = std::move(negative);
  }
  return result;
}

}  // namespace tda
