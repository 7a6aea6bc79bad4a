#include "curvature/exact.h"

#include <Eigen/Cholesky>
#include <algorithm>
#include <string>
#include <cmath>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "grad/per_sample_gradients.h"

namespace tda {
namespace {

// Per batch the Jacobian block holds D x (rows * classes) doubles; keep it near 64 MiB.
constexpr int64_t kJacobianBytes = int64_t{64} << 20;

// Shared preconditions of the explicit D x D matrices: a small enough model, matching data.
absl::Status CheckExactInputs(const Model& model, const Dataset& data) {
  const int64_t dim = model.layout().total();
  if (dim > kMaxExactParameters) {
    return absl::FailedPreconditionError(
        absl::StrCat("exact curvature needs a D x D matrix; model has ", dim, " parameters, limit ",
                     kMaxExactParameters));
  }
  RETURN_IF_ERROR(CheckDataFitsModel(data, model.config(), "exact curvature"));
  if (data.size() == 0) {
    return absl::InvalidArgumentError(absl::StrCat("data set ", data.name, " is empty"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Eigen::MatrixXd> GaussNewtonMatrix(const Model& model, const Dataset& data,
                                                  const ProgressFn& progress) {
  RETURN_IF_ERROR(CheckExactInputs(model, data));
  // A sequence's Gauss-Newton matrix sums per-position terms, which the one-label-per-row
  // Jacobian below cannot separate: build it from Gauss-Newton-vector products instead.
  if (data.is_sequence()) return CurvatureMatrix(model, data, Curvature::kGaussNewton, progress);
  const ParamLayout& layout = model.layout();
  const int64_t dim = layout.total();
  const int64_t n = data.size();
  const int64_t classes = model.config().num_classes;
  const int64_t batch =
      std::max<int64_t>(1, kJacobianBytes / (static_cast<int64_t>(sizeof(double)) * dim * classes));

  Eigen::MatrixXd gn = Eigen::MatrixXd::Zero(dim, dim);
  Eigen::MatrixXd jac(dim, 0);
  ReportProgress(progress, "gauss-newton", 0, n);
  for (int64_t begin = 0; begin < n; begin += batch) {
    const int64_t rows = std::min(batch, n - begin);
    const Batch inputs = data.Rows(begin, begin + rows);
    ASSIGN_OR_RETURN(Eigen::MatrixXf probs, model.Predict(inputs));
    if (probs.rows() != rows || probs.cols() != classes) {
      return absl::InternalError(absl::StrCat("model predicted ", probs.rows(), "x", probs.cols(),
                                              " probabilities, expected ", rows, "x", classes));
    }
    jac.resize(dim, rows * classes);
    for (int64_t c = 0; c < classes; ++c) {
      const std::vector<int32_t> labels(rows, static_cast<int32_t>(c));
      ASSIGN_OR_RETURN(BatchCapture capture, model.Capture(inputs.WithOutputs(labels.data())));
      Eigen::MatrixXd grads = PerSampleGradientColumns(capture, layout);  // D x rows
      if (grads.rows() != dim || grads.cols() != rows) {
        return absl::InternalError(absl::StrCat("per-sample gradients are ", grads.rows(), "x",
                                                grads.cols(), ", expected ", dim, "x", rows));
      }
      for (int64_t i = 0; i < rows; ++i) {
        grads.col(i) *= std::sqrt(std::max(0.0, static_cast<double>(probs(i, c))));
      }
      jac.middleCols(c * rows, rows) = grads;
    }
    gn.selfadjointView<Eigen::Lower>().rankUpdate(jac);  // SYRK: half the flops of a GEMM
    ReportProgress(progress, "gauss-newton", begin + rows, n);
  }
  gn = gn.selfadjointView<Eigen::Lower>();  // mirror the lower triangle
  gn /= static_cast<double>(n);
  if (!gn.allFinite()) {
    return absl::InternalError("the Gauss-Newton matrix holds NaN or Inf");
  }
  return gn;
}

absl::StatusOr<Eigen::MatrixXd> CurvatureMatrix(const Model& model, const Dataset& data,
                                                Curvature kind, const ProgressFn& progress) {
  RETURN_IF_ERROR(CheckExactInputs(model, data));
  const int64_t dim = model.layout().total();
  const int64_t n = data.size();
  // Few large data batches (each costs one forward and first backward) and column blocks
  // small enough to keep D x block doubles modest.
  constexpr int64_t kRowsPerBatch = 4096;
  const int64_t block = std::max<int64_t>(1, std::min<int64_t>(dim, (int64_t{32} << 20) / (8 * dim)));
  const std::string stage = absl::StrCat(CurvatureName(kind), " matrix");
  Eigen::MatrixXd matrix = Eigen::MatrixXd::Zero(dim, dim);
  const int64_t batches = (n + kRowsPerBatch - 1) / kRowsPerBatch;
  const int64_t blocks = (dim + block - 1) / block;
  ReportProgress(progress, stage, 0, batches * blocks);
  for (int64_t b = 0; b < batches; ++b) {
    const int64_t begin = b * kRowsPerBatch, rows = std::min(kRowsPerBatch, n - begin);
    for (int64_t c = 0; c < blocks; ++c) {
      const int64_t col = c * block, cols = std::min(block, dim - col);
      Eigen::MatrixXd basis = Eigen::MatrixXd::Zero(dim, cols);
      for (int64_t j = 0; j < cols; ++j) basis(col + j, j) = 1.0;
      ASSIGN_OR_RETURN(Eigen::MatrixXd product,
                       model.CurvatureProduct(data.Rows(begin, begin + rows), basis, kind));
      matrix.middleCols(col, cols) += (static_cast<double>(rows) / static_cast<double>(n)) * product;
      ReportProgress(progress, stage, b * blocks + c + 1, batches * blocks);
    }
  }
  Eigen::MatrixXd symmetric = 0.5 * (matrix + matrix.transpose());
  if (!symmetric.allFinite()) {
    return absl::InternalError(absl::StrCat("the ", stage, " holds NaN or Inf"));
  }
  return symmetric;
}

absl::StatusOr<Eigen::MatrixXd> HessianMatrix(const Model& model, const Dataset& data,
                                              const ProgressFn& progress) {
  return CurvatureMatrix(model, data, Curvature::kHessian, progress);
}

struct ExactPreconditioner::Impl {
  Eigen::LLT<Eigen::MatrixXd> llt;
  int64_t dim = 0;
};

ExactPreconditioner::ExactPreconditioner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<std::unique_ptr<ExactPreconditioner>> ExactPreconditioner::Create(
    const Eigen::MatrixXd& curvature, double damping) {
  if (curvature.rows() != curvature.cols()) {
    return absl::InvalidArgumentError(
        absl::StrCat("exact preconditioner: curvature must be square, got ", curvature.rows(), "x",
                     curvature.cols()));
  }
  if (!std::isfinite(damping) || damping < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("damping must be a finite number >= 0, got ", damping));
  }
  if (!curvature.allFinite()) {
    return absl::InvalidArgumentError("exact preconditioner: curvature holds NaN or Inf");
  }
  auto impl = std::make_unique<Impl>();
  impl->dim = curvature.rows();
  Eigen::MatrixXd damped = curvature;
  damped.diagonal().array() += damping;
  impl->llt.compute(damped);
  if (impl->llt.info() != Eigen::Success) {
    return absl::FailedPreconditionError(
        absl::StrCat("exact preconditioner: curvature + ", damping,
                     " I is not positive definite (Cholesky failed); use a larger damping"));
  }
  return std::unique_ptr<ExactPreconditioner>(new ExactPreconditioner(std::move(impl)));
}

absl::StatusOr<Eigen::MatrixXd> ExactPreconditioner::Apply(const Eigen::MatrixXd& grads) const {
  if (grads.rows() != impl_->dim) {
    return absl::InvalidArgumentError(absl::StrCat("exact preconditioner: expected ", impl_->dim,
                                                   " gradient rows, got ", grads.rows()));
  }
  if (!grads.allFinite()) {
    return absl::InvalidArgumentError("exact preconditioner: gradients hold NaN or Inf");
  }
  return Eigen::MatrixXd(impl_->llt.solve(grads));
}

}  // namespace tda
