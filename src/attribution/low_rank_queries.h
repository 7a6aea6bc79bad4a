// Low-rank query batches (AttributeRequest.query_rank; after Kronfluence's
// query_gradient_low_rank, which factorises each query's per-layer gradient, not the batch):
// a batch of Q preconditioned query vectors V (dim x Q) is ranked against the index through
// its rank-r approximation V ~= W C^T (W: dim x r orthonormal "basis queries", the top r left
// singular vectors of V with its columns scaled to unit norm, so that every query weighs the
// same whatever its gradient's size; C = V^T W: Q x r, each query's coordinates in them).
//
//   1. One scan of the index with the r basis vectors (GradientIndex::Scan: the fused kernel
//      for r <= 8, GEMM beyond) gives P = G W, the r projections of every row (N x r floats).
//   2. Each query's approximate score of row i is P.row(i) . C.row(q) (an N x r by r x Q GEMM,
//      in blocks of rows); per query the `candidates` largest and the `candidates` smallest
//      approximate scores are kept.
//   3. Those candidates are re-scored exactly against the full query vector
//      (RescoreCandidates, approximate_scan.h) and the exact top_k of each sign returned.
//
// Contract: every returned score is the exact f32 score of its row (as the exact scan computes
// it, to float rounding: only the order of the additions differs), and the lists obey the
// scan's rules (strictly positive proponents descending, strictly negative opponents
// ascending, ties to the lower row, deleted rows never ranked). What can be missed: a row whose
// approximate score fell outside its query's candidates. At r = rank(V) the approximation is V
// itself (to rounding), so the result is the exact top-k.
//
// Cost: reading the rows once with r vectors instead of Q (the scan is memory-bound up to 8
// vectors, compute-bound beyond: ~N dim r instead of N dim Q multiply-adds), plus N r Q for
// the approximate scores, plus 2 x candidates x Q row reads for the re-scoring, plus the
// decomposition (a min(Q, dim)^2 Gram matrix and its eigendecomposition, in double).
// Deterministic: the same queries give the same basis, candidates and result.
//
// Pure functions of their arguments; thread-safe.
#pragma once

#include <Eigen/Core>
#include <cstdint>

#include "absl/status/statusor.h"
#include "attribution/approximate_scan.h"
#include "attribution/low_rank_options.h"
#include "common/cancellation.h"
#include "index/gradient_index.h"

namespace tda {

// True when a batch of `queries` is answered by the low-rank path at `rank`: only when the
// rank is below the number of queries (otherwise the basis is no smaller than the batch and the
// exact scan is cheaper and complete).
inline bool LowRankPays(int64_t queries, int64_t rank) { return rank > 0 && rank < queries; }

struct QueryBasis {
  Eigen::MatrixXf basis;         // dim x r, orthonormal columns
  Eigen::MatrixXf coefficients;  // Q x r: queries ~= basis * coefficients^T
};

// The rank-min(rank, Q, dim) basis of `queries` (dim x Q): the top eigenvectors of the smaller
// Gram matrix (U^T U or U U^T, U = the queries scaled to unit norm). Directions whose singular
// value is below 1e-6 of the largest are dropped (they move no score), so r can come out smaller;
// an all-zero batch gives r = 0. REQUIRES rank >= 1.
QueryBasis LowRankQueryBasis(const Eigen::MatrixXd& queries, int64_t rank);

// Steps 1-3 above for `queries` (dim x Q, preconditioned, as given to GradientIndex::Scan) at
// low_rank.rank (REQUIRES low_rank.enabled(), validated by ValidateLowRankQueries); runs at
// any rank, even r >= Q (callers use LowRankPays to decide). kDeadlineExceeded / kCancelled
// when `cancellation` fires (checked per row block of the scan). kInvalidArgument when
// queries.rows() != index.dim().
[[nodiscard]] absl::StatusOr<ApproximateTopK> LowRankTopK(const GradientIndex& index,
                                                          const Eigen::MatrixXd& queries,
                                                          int64_t top_k,
                                                          const LowRankQueries& low_rank,
                                                          const Cancellation& cancellation);

}  // namespace tda
