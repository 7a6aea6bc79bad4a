#include "attribution/self_influence.h"

#include <algorithm>

#include "common/status_macros.h"

namespace tda {

absl::StatusOr<Eigen::VectorXd> SelfInfluence(const GradientIndex& index,
                                              const Preconditioner& preconditioner,
                                              const ProgressFn& progress, int64_t block_rows) {
  const int64_t n = index.rows(), dim = index.dim();
  Eigen::VectorXd result(n);
  Eigen::VectorXf row(dim);
  for (int64_t begin = 0; begin < n; begin += block_rows) {
    const int64_t count = std::min(block_rows, n - begin);
    Eigen::MatrixXd block(dim, count);
    for (int64_t r = 0; r < count; ++r) {
      index.CopyRow(begin + r, row.data());
      block.col(r) = row.cast<double>();
    }
    ASSIGN_OR_RETURN(Eigen::MatrixXd preconditioned, preconditioner.Apply(block));
    result.segment(begin, count) = preconditioned.cwiseProduct(block).colwise().sum().transpose();
    ReportProgress(progress, "self-influence", begin + count, n);
  }
  return result;
}

}  // namespace tda
