#include "attribution/approximate_scan.h"

#include <algorithm>
#include <limits>
#include <utility>

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
  // (row, query) pairs in row order: a row several queries want is read once, and an f32 row
  // is scored where it is mapped.
  std::vector<std::pair<int64_t, int64_t>> pairs;
  for (int64_t q = 0; q < q_count; ++q) {
    for (const int64_t r : candidates[static_cast<size_t>(q)]) pairs.emplace_back(r, q);
  }
  std::sort(pairs.begin(), pairs.end());
  pairs.erase(std::unique(pairs.begin(), pairs.end()), pairs.end());
  std::vector<size_t> row_starts;  // where each row's pairs begin, then pairs.size()
  for (size_t i = 0; i < pairs.size(); ++i) {
    if (i == 0 || pairs[i].first != pairs[i - 1].first) row_starts.push_back(i);
  }
  row_starts.push_back(pairs.size());
  const int64_t distinct_rows = static_cast<int64_t>(row_starts.size()) - 1;
  std::vector<float> scores(pairs.size(), std::numeric_limits<float>::quiet_NaN());
#pragma omp parallel for schedule(dynamic, 64)
  for (int64_t g = 0; g < distinct_rows; ++g) {
    const int64_t r = pairs[row_starts[g]].first;
    thread_local std::vector<float> buffer;
    buffer.resize(static_cast<size_t>(index.dim()));
    const float* values = index.RowF32(r, buffer.data());
    if (values == nullptr || index.is_deleted(r)) continue;
    const Eigen::Map<const Eigen::VectorXf> row(values, index.dim());
    for (size_t i = row_starts[g]; i < row_starts[g + 1]; ++i) {
      scores[i] = row.dot(queries.col(pairs[i].second));
    }
  }
  std::vector<std::vector<ScoredRow>> positive(static_cast<size_t>(q_count)),
      negative(static_cast<size_t>(q_count));
  for (size_t i = 0; i < pairs.size(); ++i) {
    const auto [r, q] = pairs[i];
    if (scores[i] > 0) positive[static_cast<size_t>(q)].push_back({r, scores[i]});
    if (scores[i] < 0) negative[static_cast<size_t>(q)].push_back({r, scores[i]});
  }
  ApproximateTopK result;
  result.proponents.resize(static_cast<size_t>(q_count));
  result.opponents.resize(static_cast<size_t>(q_count));
  for (int64_t q = 0; q < q_count; ++q) {
    result.proponents[q] = BestRows(std::move(positive[q]), top_k, /*largest=*/true);
    result.opponents[q] = BestRows(std::move(negative[q]), top_k, /*largest=*/false);
  }
  return result;
}

}  // namespace tda
