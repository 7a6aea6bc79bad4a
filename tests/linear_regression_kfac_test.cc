// K-FAC is exact for linear regression: one linear layer f(x) = w^T a (a = [x; 1]) with squared
// error l = (f - y)^2 / 2 has per-sample gradient (f - y) a, output Hessian 1, and Gauss-Newton
// matrix GN = E[a a^T] = A. K-FAC with the Gauss-Newton output factor S = E[H_out] = [1] gives
// S (x) A = A, and with the damping added to the Kronecker eigenvalues l_S l_A + lambda its
// inverse is (GN + lambda I)^-1 exactly (S is 1x1). Checked on real Fashion-MNIST features
// (7x7, so D = 50) through tda's own KroneckerPreconditioner and ExactPreconditioner.
#include <Eigen/Dense>
#include <cmath>
#include <iostream>
#include <memory>
#include <string>

#include "curvature/ekfac.h"
#include "curvature/exact.h"
#include "test_support.h"

namespace tda {
namespace {

constexpr int64_t kSide = 7;
constexpr int64_t kTrain = 2000;

struct Regression {
  Eigen::MatrixXd a;  // N x (in + 1): inputs with the bias 1
  Eigen::VectorXd y;  // targets
  Eigen::VectorXd w;  // least-squares fit (ridge 1e-3)
};

Regression Fit() {
  const Dataset data = testing::Downsample(testing::FashionTrain(kTrain), kSide);
  Regression r;
  const int64_t in = data.feature_dim;
  r.a.resize(data.size(), in + 1);
  r.y.resize(data.size());
  for (int64_t i = 0; i < data.size(); ++i) {
    for (int64_t j = 0; j < in; ++j) r.a(i, j) = data.row(i)[j];
    r.a(i, in) = 1.0;
    r.y(i) = data.labels[i];  // regress the class index: a real, noisy target
  }
  Eigen::MatrixXd normal = r.a.transpose() * r.a / static_cast<double>(data.size());
  normal.diagonal().array() += 1e-3;
  r.w = normal.ldlt().solve(r.a.transpose() * r.y / static_cast<double>(data.size()));
  return r;
}

TEST(LinearRegressionKfac, kfac_with_gauss_newton_output_factor_equals_exact_damped_inverse) {
  const Regression r = Fit();
  const int64_t n = r.a.rows(), cols = r.a.cols();
  // Exact Gauss-Newton: J^T H_out J / N with J the N x D Jacobian of the outputs (rows a_i^T)
  // and H_out = 1.
  const Eigen::MatrixXd gn = r.a.transpose() * r.a / static_cast<double>(n);
  // Per-sample gradients (f_i - y_i) a_i, as columns: what an index stores.
  const Eigen::VectorXd residual = r.a * r.w - r.y;
  const Eigen::MatrixXd grads = (r.a.array().colwise() * residual.array()).matrix().transpose();

  auto factors = std::make_shared<KroneckerFactors>();
  factors->layout.Add("linear", /*out=*/1, /*in=*/cols - 1, /*has_bias=*/true);
  LayerFactors layer;
  layer.a_cov = gn;                                    // A = E[a a^T]
  layer.s_cov = Eigen::MatrixXd::Constant(1, 1, 1.0);  // Gauss-Newton output factor E[H_out]
  factors->layers.push_back(layer);
  factors->examples = n;
  TDA_ASSERT_OK(DecomposeFactors(factors.get()));

  const double mean_eigen = gn.trace() / static_cast<double>(cols);
  for (double lambda : {1e-4 * mean_eigen, 0.1 * mean_eigen, 10 * mean_eigen}) {
    Damping damping;
    damping.absolute = lambda;
    auto kfac = KroneckerPreconditioner::Create(factors, Method::kKfac, damping);
    TDA_ASSERT_OK(kfac);
    auto exact = ExactPreconditioner::Create(gn, lambda);
    TDA_ASSERT_OK(exact);
    auto got = (*kfac)->Apply(grads);
    auto want = (*exact)->Apply(grads);
    TDA_ASSERT_OK(got);
    TDA_ASSERT_OK(want);
    // Against the explicit inverse too, so neither side is trusted alone.
    Eigen::MatrixXd damped = gn;
    damped.diagonal().array() += lambda;
    const Eigen::MatrixXd inverse = damped.inverse();
    const double err = (*got - *want).norm() / want->norm();
    const double err_inverse = (*got - inverse * grads).norm() / want->norm();
    Eigen::JacobiSVD<Eigen::MatrixXd> svd(damped);
    const double cond = svd.singularValues()(0) / svd.singularValues().tail(1)(0);
    std::cout << "lambda " << lambda << " (condition number " << cond
              << "): |K-FAC - exact| / |exact| = " << err << ", vs explicit inverse " << err_inverse
              << "\n";
    ::testing::Test::RecordProperty("kfac_vs_exact_error", std::to_string(err));
    // Numerical precision: a few ulps times the condition number.
    EXPECT_LT(err, 1e-13 * cond + 1e-13);
    EXPECT_LT(err_inverse, 1e-13 * cond + 1e-13);
  }

  // The empirical output factor E[(f - y)^2] is not the Gauss-Newton one: with it K-FAC is a
  // rescaled inverse, off by that factor wherever the damping matters. Shown, not relied on.
  const double empirical_s = residual.squaredNorm() / static_cast<double>(n);
  std::cout << "empirical output factor E[(f - y)^2] = " << empirical_s
            << " (Gauss-Newton factor: 1)\n";
  EXPECT_GT(std::abs(empirical_s - 1.0), 1e-3);
}

}  // namespace
}  // namespace tda
