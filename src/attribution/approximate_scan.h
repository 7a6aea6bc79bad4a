// Approximate top-k (AttributeRequest.approximate): the index's ANN (index/ann_index.h)
// proposes candidate rows for each preconditioned query and for its negation (opponents), and
// every candidate is re-scored exactly against its stored row, in f32 as the exact scan
// computes it (so a returned score equals the exact score of that row to float rounding: only
// the order of the additions differs). What the ANN misses is simply not returned; the
// result's lists obey the scan's rules (ScanResult: strictly positive proponents descending,
// strictly negative opponents ascending, ties to the lower row, deleted rows never ranked).
//
// What needs every row's score does not combine with it (ValidateApproximateSearch,
// approximate_search.h): return_scores and group_by_document are refused, per-source totals
// are not computed.
//
// Pure functions of their arguments; thread-safe.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "attribution/approximate_search.h"
#include "index/ann_index.h"
#include "index/gradient_index.h"

namespace tda {

struct ApproximateTopK {
  std::vector<std::vector<ScoredRow>> proponents, opponents;  // per query, as ScanResult
};

// `queries` is dim x Q (the preconditioned query vectors, as given to GradientIndex::Scan).
[[nodiscard]] absl::StatusOr<ApproximateTopK> ApproximateScan(const GradientIndex& index,
                                                              const AnnIndex& ann,
                                                              const Eigen::MatrixXf& queries,
                                                              int64_t top_k,
                                                              const ApproximateSearch& search);

// The exact half of any candidate search (the ANN's here, low-rank queries' in
// low_rank_queries.h): re-scores candidates[q] (rows of `index`, any order, duplicates and
// deleted rows allowed) against queries.col(q) in f32 and keeps, per query, the top_k strictly
// positive scores (descending) and the top_k strictly negative ones (ascending), ties to the
// lower row. Rows are scored in parallel (OpenMP), each read once for all its queries. REQUIRES
// candidates.size() == queries.cols(), queries.rows() == index.dim().
ApproximateTopK RescoreCandidates(const GradientIndex& index, const Eigen::MatrixXf& queries,
                                  std::vector<std::vector<int64_t>> candidates, int64_t top_k);

}  // namespace tda
