#include "attribution/self_influence.h"

#include <algorithm>
#include <functional>

#include "common/status_macros.h"

namespace tda {
namespace {

// v_i^T P v_i for `count` vectors v_i of the index's space, built by `fill(i, &v_i)` in blocks of
// `block` columns, so memory stays O(block x dim).
absl::StatusOr<Eigen::VectorXd> QuadraticForms(
    int64_t count, int64_t dim, const Preconditioner& preconditioner,
    const std::function<void(int64_t, Eigen::Ref<Eigen::VectorXd>)>& fill,
    const ProgressFn& progress, int64_t block) {
  Eigen::VectorXd result(count);
  for (int64_t begin = 0; begin < count; begin += block) {
    const int64_t n = std::min(block, count - begin);
    Eigen::MatrixXd columns(dim, n);
    for (int64_t c = 0; c < n; ++c) fill(begin + c, columns.col(c));
    ASSIGN_OR_RETURN(Eigen::MatrixXd preconditioned, preconditioner.Apply(columns));
    result.segment(begin, n) = preconditioned.cwiseProduct(columns).colwise().sum().transpose();
    ReportProgress(progress, "self-influence", begin + n, count);
  }
  return result;
}

}  // namespace

absl::StatusOr<Eigen::VectorXd> SelfInfluence(const GradientIndex& index,
                                              const Preconditioner& preconditioner,
                                              const ProgressFn& progress, int64_t block_rows) {
  Eigen::VectorXf row(index.dim());
  return QuadraticForms(
      index.rows(), index.dim(), preconditioner,
      [&](int64_t r, Eigen::Ref<Eigen::VectorXd> out) {
        index.CopyRow(r, row.data());
        out = row.cast<double>();
      },
      progress, block_rows);
}

absl::StatusOr<Eigen::VectorXd> DocumentSelfInfluence(const GradientIndex& index,
                                                      const IndexDocuments& documents,
                                                      const Preconditioner& preconditioner,
                                                      const ProgressFn& progress,
                                                      int64_t block_documents) {
  Eigen::VectorXf row(index.dim());
  return QuadraticForms(
      documents.size(), index.dim(), preconditioner,
      [&](int64_t d, Eigen::Ref<Eigen::VectorXd> out) {
        out.setZero();
        for (int64_t r : documents.live_rows(d)) {
          index.CopyRow(r, row.data());
          out += row.cast<double>();
        }
      },
      progress, block_documents);
}

}  // namespace tda
