// Kronecker-factored curvature (George et al. 2018, EK-FAC; Martens & Grosse 2015, K-FAC).
//
// Per tracked layer with per-sample gradient G = g a^T (out x cols):
//   A = E[a a^T] = Q_A diag(l_A) Q_A^T,   S = E[g g^T] = Q_S diag(l_S) Q_S^T,
//   EK-FAC eigenvalues  L[i][j] = E[((Q_S^T G Q_A)_{ij})^2]   (the eigenvalue correction),
//   K-FAC eigenvalues   L[i][j] = l_S[i] * l_A[j].
// Inverse: G -> Q_S ((Q_S^T G Q_A) ./ (L + lambda)) Q_A^T, i.e.
//   (Q_S kron Q_A) diag(1 / (vec L + lambda)) (Q_S kron Q_A)^T vec(G).
// Damping lambda per layer: `absolute` if set, else `relative` x mean(L) of that layer.
// All factor math is float64.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "absl/status/statusor.h"
#include "curvature/preconditioner.h"
#include "model/param_layout.h"

namespace tda {

struct LayerFactors {
  Eigen::MatrixXd a_cov;       // cols x cols, E[a a^T]
  Eigen::MatrixXd s_cov;       // out x out, E[g g^T]
  Eigen::MatrixXd q_a;         // eigenvectors of a_cov (columns)
  Eigen::VectorXd lambda_a;    // eigenvalues of a_cov (ascending)
  Eigen::MatrixXd q_s;
  Eigen::VectorXd lambda_s;
  Eigen::MatrixXd corrected;   // out x cols, EK-FAC eigenvalues E[(Q_S^T G Q_A)^2]
};

struct KroneckerFactors {
  ParamLayout layout;
  std::vector<LayerFactors> layers;
  int64_t examples = 0;          // samples the factors were estimated from
  std::string fisher = "true";   // "true" (sampled labels) or "empirical"
};

struct Damping {
  double relative = 0.1;             // x mean eigenvalue of each layer
  std::optional<double> absolute;    // overrides `relative` when set
};

class KroneckerPreconditioner : public Preconditioner {
 public:
  // method must be kEkfac or kKfac. kInvalidArgument for negative damping or a zero damped
  // eigenvalue.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<KroneckerPreconditioner>> Create(
      std::shared_ptr<const KroneckerFactors> factors, Method method, const Damping& damping);

  Method method() const override { return method_; }
  [[nodiscard]] absl::StatusOr<Eigen::MatrixXd> Apply(const Eigen::MatrixXd& grads) const override;
  // The damping lambda chosen for each layer.
  const std::vector<double>& layer_damping() const { return damping_; }

 private:
  KroneckerPreconditioner() = default;
  Method method_ = Method::kEkfac;
  std::shared_ptr<const KroneckerFactors> factors_;
  std::vector<Eigen::MatrixXd> eigenvalues_;   // per layer, out x cols (EK-FAC or K-FAC)
  std::vector<double> damping_;
};

// Eigendecomposes A and S of each layer (after checking them for NaN/Inf, naming the layer)
// and fills q_*, lambda_*. `corrected` is left to the fitting pass.
[[nodiscard]] absl::Status DecomposeFactors(KroneckerFactors* factors);

// factors.safetensors: per layer "<name>.a_cov", ".s_cov", ".q_a", ".lambda_a", ".q_s",
// ".lambda_s", ".corrected" (F64), metadata {layout, examples, fisher}.
[[nodiscard]] absl::Status SaveFactors(const KroneckerFactors& factors, const std::string& path);
[[nodiscard]] absl::StatusOr<KroneckerFactors> LoadFactors(const std::string& path);

}  // namespace tda
