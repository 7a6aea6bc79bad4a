// Ground truth for small models: the explicit damped curvature matrix, solved by Cholesky.
// Gauss-Newton (= true Fisher for softmax cross-entropy) of the mean training loss is built as
//   GN = 1/N sum_i sum_c p_ic g_ic g_ic^T,
// where g_ic is sample i's gradient with label c and p_ic the model's probability of c
// (because d CE / d logits = p - e_c, so sum_c p_c (p - e_c)(p - e_c)^T = diag(p) - p p^T).
// Refuses models with more than kMaxExactParameters parameters (kFailedPrecondition).
#pragma once

#include <memory>

#include <Eigen/Core>

#include "absl/status/statusor.h"
#include "common/progress.h"
#include "curvature/preconditioner.h"
#include "data/dataset.h"
#include "model/model.h"

namespace tda {

inline constexpr int64_t kMaxExactParameters = 20000;

// D x D Gauss-Newton matrix of the mean cross-entropy over `data`.
[[nodiscard]] absl::StatusOr<Eigen::MatrixXd> GaussNewtonMatrix(const Model& model, const Dataset& data,
                                                  const ProgressFn& progress = {});

// D x D curvature matrix of the mean cross-entropy over `data`, built column by column from the
// model's curvature-vector products (Model::CurvatureProduct, float64, symmetrised). With
// Curvature::kGaussNewton it equals GaussNewtonMatrix; kHessian gives the true Hessian (the
// one LiSSA inverts by default). No weight-decay term: add it as damping. Refuses models with
// more than kMaxExactParameters parameters (kFailedPrecondition).
[[nodiscard]] absl::StatusOr<Eigen::MatrixXd> CurvatureMatrix(const Model& model, const Dataset& data,
                                                Curvature kind, const ProgressFn& progress = {});

// The true Hessian of the mean cross-entropy over `data` (CurvatureMatrix with kHessian).
[[nodiscard]] absl::StatusOr<Eigen::MatrixXd> HessianMatrix(const Model& model, const Dataset& data,
                                              const ProgressFn& progress = {});

class ExactPreconditioner : public Preconditioner {
 public:
  // Factorises (curvature + damping I) once. kInvalidArgument for negative damping or a
  // non-square matrix; kFailedPrecondition when the damped matrix is not positive definite.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ExactPreconditioner>> Create(const Eigen::MatrixXd& curvature,
                                                                     double damping);
  Method method() const override { return Method::kExact; }
  [[nodiscard]] absl::StatusOr<Eigen::MatrixXd> Apply(const Eigen::MatrixXd& grads) const override;

 private:
  struct Impl;
  explicit ExactPreconditioner(std::unique_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace tda
