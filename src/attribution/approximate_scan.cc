#include "attribution/approximate_scan.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "index/top_rows.h"

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
  std::vector<std::vector<int64_t>> candidates(static_cast<size_t>(queries.cols()));
  for (size_t q = 0; q < candidates.size(); ++q) {
    candidates[q] = up[q];
    candidates[q].insert(candidates[q].end(), down[q].begin(), down[q].end());
  }
  return RescoreCandidates(index, queries, std::move(candidates), top_k);
}

ApproximateTopK RescoreCandidates(const GradientIndex& index, const Eigen::MatrixXf& queries,
                                  std::vector<std::vector<int64_t>> candidates, int64_t top_k) {
  const int64_t q_count = queries.cols();
  ApproximateTopK result;
  result.proponents.resize(static_cast<size_t>(q_count));
  result.opponents.resize(static_cast<size_t>(q_count));
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t q = 0; q < q_count; ++q) {
    std::vector<int64_t>& rows = candidates[static_cast<size_t>(q)];
    std::sort(rows.begin(), rows.end());
    rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
    Eigen::VectorXf row(index.dim());
    std::vector<ScoredRow> positive, negative;
    for (const int64_t r : rows) {
      if (index.is_deleted(r) || !index.CopyRow(r, row.data())) continue;
      const float score = row.dot(queries.col(q));
      if (score > 0) positive.push_back({r, score});
      if (score < 0) negative.push_back({r, score});
    }
    result.proponents[q] = BestRows(std::move(positive), top_k, /*largest=*/true);
    result.opponents[q] = BestRows(std::move(negative), top_k, /*largest=*/false);
  }
  return result;
}

}  // namespace tda
