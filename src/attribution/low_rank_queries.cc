#include "attribution/low_rank_queries.h"

#include <Eigen/Eigenvalues>
#include <Eigen/QR>
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "index/top_rows.h"

namespace tda {
namespace {

// Singular values below this share of the largest are dropped from the basis.
constexpr double kRelativeSingularValueFloor = 1e-6;
// Rows per block of the approximate scores (block x Q floats per thread).
constexpr int64_t kApproximateBlockRows = 1024;

// The per-query candidate rows of the approximate scores projections * coefficients^T: the
// `candidates` largest and the `candidates` smallest of each query (deleted rows, NaN, never).
std::vector<std::vector<int64_t>> Candidates(const Eigen::MatrixXf& projections,
                                             const Eigen::MatrixXf& coefficients,
                                             int64_t candidates) {
  const int64_t rows = projections.rows();
  const int64_t q_count = coefficients.rows();
  const Eigen::MatrixXf coefficients_t = coefficients.transpose();  // r x Q
  const int64_t blocks = (rows + kApproximateBlockRows - 1) / kApproximateBlockRows;
#ifdef _OPENMP
  const int threads = std::max(1, omp_get_max_threads());
#else
  const int threads = 1;
#endif
  std::vector<QueryTopRows> states(static_cast<size_t>(threads),
                                   QueryTopRows(q_count, candidates, /*split_by_sign=*/false));
#pragma omp parallel for schedule(static, 1) num_threads(threads)
  for (int64_t b = 0; b < blocks; ++b) {
#ifdef _OPENMP
    QueryTopRows& state = states[static_cast<size_t>(omp_get_thread_num())];
#else
    QueryTopRows& state = states[0];
#endif
    const int64_t begin = b * kApproximateBlockRows;
    const int64_t count = std::min(kApproximateBlockRows, rows - begin);
    thread_local Eigen::MatrixXf approximate;
    approximate.resize(count, q_count);
    approximate.noalias() = projections.middleRows(begin, count) * coefficients_t;
    for (int64_t q = 0; q < q_count; ++q) state.OfferColumn(q, begin, approximate.col(q).data(), count);
  }
  // The global best of each direction (not the union of the threads': the same candidates
  // whatever the thread count).
  std::vector<std::vector<int64_t>> picked(static_cast<size_t>(q_count));
  for (int64_t q = 0; q < q_count; ++q) {
    for (const bool largest : {true, false}) {
      for (const ScoredRow& row : QueryTopRows::Merge(states, q, candidates, largest)) {
        picked[q].push_back(row.row);
      }
    }
  }
  return picked;
}

}  // namespace

QueryBasis LowRankQueryBasis(const Eigen::MatrixXd& queries, int64_t rank) {
  const Eigen::Index dim = queries.rows(), q_count = queries.cols();
  const Eigen::Index most = std::min<Eigen::Index>({static_cast<Eigen::Index>(rank), q_count, dim});
  // Eigenvectors of the smaller Gram matrix, ascending eigenvalues: V^T V = U S^2 U^T (then
  // W = V U S^-1) or V V^T = W S^2 W^T.
  const bool by_queries = q_count <= dim;
  // Each query counts once, whatever its norm (query gradients differ by orders of magnitude:
  // the raw batch's top directions would be those of its few largest queries). Spanning the
  // same space, this keeps full rank exact.
  Eigen::MatrixXd unit = queries;
  for (Eigen::Index q = 0; q < q_count; ++q) {
    const double norm = unit.col(q).norm();
    if (norm > 0) unit.col(q) /= norm;
  }
  const Eigen::MatrixXd gram = by_queries ? Eigen::MatrixXd(unit.transpose() * unit)
                                          : Eigen::MatrixXd(unit * unit.transpose());
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eigen(gram);
  const Eigen::VectorXd& values = eigen.eigenvalues();
  const Eigen::Index n = values.size();
  const double largest = n > 0 ? values(n - 1) : 0.0;
  const double floor = largest * kRelativeSingularValueFloor * kRelativeSingularValueFloor;
  Eigen::Index r = 0;
  while (r < most && largest > 0 && values(n - 1 - r) > floor) ++r;
  Eigen::MatrixXd basis(dim, r);
  for (Eigen::Index k = 0; k < r; ++k) {
    const Eigen::VectorXd vector = eigen.eigenvectors().col(n - 1 - k);
    basis.col(k) =
        by_queries ? Eigen::VectorXd(unit * vector / std::sqrt(values(n - 1 - k))) : vector;
  }
  if (by_queries && r > 0) {
    // V U S^-1 is orthonormal only to the Gram matrix's rounding: make it exactly so, keeping
    // the span (and the order of the directions).
    const Eigen::HouseholderQR<Eigen::MatrixXd> qr(basis);
    basis = qr.householderQ() * Eigen::MatrixXd::Identity(dim, r);
  }
  QueryBasis out;
  out.coefficients = (queries.transpose() * basis).cast<float>();
  out.basis = basis.cast<float>();
  return out;
}

absl::StatusOr<ApproximateTopK> LowRankTopK(const GradientIndex& index,
                                            const Eigen::MatrixXd& queries, int64_t top_k,
                                            const LowRankQueries& low_rank,
                                            const Cancellation& cancellation) {
  if (queries.rows() != index.dim()) {
    return absl::InvalidArgumentError(absl::StrCat("low-rank queries have ", queries.rows(),
                                                   " dimensions, the index ", index.dim()));
  }
  if (!queries.allFinite()) {
    return absl::InternalError(
        "a preconditioned query vector is not finite; ask without query_rank to see which");
  }
  const int64_t candidates =
      low_rank.candidates > 0 ? low_rank.candidates : std::min(kMaxLowRankCandidates, 10 * top_k);
  const QueryBasis basis = LowRankQueryBasis(queries, low_rank.rank);
  std::vector<std::vector<int64_t>> picked(static_cast<size_t>(queries.cols()));
  if (basis.basis.cols() > 0) {
    ScanOptions scan;
    scan.keep_scores = true;  // the N x r projections (deleted rows NaN)
    scan.cancellation = &cancellation;
    const ScanResult projections = index.Scan(basis.basis, scan);
    RETURN_IF_ERROR(projections.status);
    picked = Candidates(projections.scores, basis.coefficients, candidates);
  }
  RETURN_IF_ERROR(cancellation.Check("low-rank re-scoring"));
  return RescoreCandidates(index, queries.cast<float>(), std::move(picked), top_k);
}

}  // namespace tda
