// Curvature-vector products and LiSSA against explicit matrices, on a tiny MLP trained for real
// on Fashion-MNIST (7x7 inputs, hidden 8: D = 8 * 50 + 10 * 9 = 490), and LiSSA's refusals.
#include "curvature/lissa.h"

#include <Eigen/Eigenvalues>
#include <algorithm>
#include <cmath>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "attribution/attributor.h"
#include "curvature/exact.h"
#include "data/fashion_mnist.h"
#include "grad/per_sample_gradients.h"
#include "index/index_builder.h"
#include "common/statistics.h"
#include "test_support.h"

namespace tda {
namespace {

using ::testing::HasSubstr;
using testing::StatusIs;

constexpr int64_t kSide = 7;
constexpr int64_t kTrain = 300;
constexpr int64_t kQueries = 8;

Eigen::MatrixXd Gradients(const Model& model, const Dataset& data) {
  auto capture = model.Capture(data.Rows(0, data.size()));
  EXPECT_TRUE(capture.ok()) << capture.status();
  return PerSampleGradientColumns(*capture, model.layout());
}

struct Fixture {
  std::unique_ptr<Model> model;
  Dataset train;
  Dataset queries;
};

const Fixture& Tiny(std::vector<int64_t> hidden = {8}) {
  static std::map<std::vector<int64_t>, Fixture>* cache =
      new std::map<std::vector<int64_t>, Fixture>;
  auto it = cache->find(hidden);
  if (it != cache->end()) return it->second;
  testing::TinyModelSpec spec;
  spec.hidden = hidden;
  spec.train_size = kTrain;
  spec.epochs = 3;
  spec.input_side = kSide;
  Fixture f;
  f.model = testing::TrainTinyModel(spec);
  f.train = testing::Downsample(testing::FashionTrain(kTrain), kSide);
  f.queries = testing::Downsample(testing::FashionTest(kQueries), kSide);
  return cache->emplace(hidden, std::move(f)).first->second;
}

double FiniteDifferenceError(const Model& model, const Dataset& data);

// The Gauss-Newton product equals the explicit Gauss-Newton matrix (built independently from
// per-sample gradients of every label) times the vector.
TEST(CurvatureProduct, gauss_newton_product_matches_explicit_matrix) {
  const Fixture& f = Tiny();
  ASSERT_NE(f.model, nullptr);
  auto gn = GaussNewtonMatrix(*f.model, f.train);
  TDA_ASSERT_OK(gn);
  const Eigen::MatrixXd v = Eigen::MatrixXd::Random(gn->rows(), 3);
  auto product = f.model->CurvatureProduct(f.train.Rows(0, f.train.size()), v,
                                           Curvature::kGaussNewton);
  TDA_ASSERT_OK(product);
  const Eigen::MatrixXd want = *gn * v;
  const double err = (*product - want).norm() / want.norm();
  std::cout << "Gauss-Newton product vs explicit matrix: relative error " << err << "\n";
  EXPECT_LT(err, 1e-5);
}

// Hessian-vector products: (1) on logistic regression the Hessian is the Gauss-Newton matrix;
// (2) on the MLP the products form a symmetric matrix and (3) match central differences of
// the mean gradient (with tanh: central differences need a smooth model).
TEST(CurvatureProduct, hessian_product_is_exact) {
  const Fixture& logreg = Tiny({});
  ASSERT_NE(logreg.model, nullptr);
  auto gn = GaussNewtonMatrix(*logreg.model, logreg.train);
  TDA_ASSERT_OK(gn);
  const Eigen::MatrixXd v = Eigen::MatrixXd::Random(gn->rows(), 2);
  auto hv = logreg.model->CurvatureProduct(logreg.train.Rows(0, logreg.train.size()), v,
                                           Curvature::kHessian);
  TDA_ASSERT_OK(hv);
  EXPECT_LT((*hv - *gn * v).norm() / (*gn * v).norm(), 1e-5);

  const Fixture& f = Tiny();
  ASSERT_NE(f.model, nullptr);
  const int64_t dim = f.model->layout().total();
  auto raw = f.model->CurvatureProduct(f.train.Rows(0, f.train.size()),
                                       Eigen::MatrixXd::Identity(dim, dim), Curvature::kHessian);
  TDA_ASSERT_OK(raw);
  const double asym = (*raw - raw->transpose()).norm() / raw->norm();
  std::cout << "Hessian from products: asymmetry " << asym << "\n";
  EXPECT_LT(asym, 1e-10);
  auto hessian = HessianMatrix(*f.model, f.train);
  TDA_ASSERT_OK(hessian);
  EXPECT_LT((*hessian - *raw).norm() / raw->norm(), 1e-10);

  // Central differences need a smooth model: ReLU kinks within eps of a pre-activation make
  // the gradient jump, so the MLP's weights are checked with tanh.
  EXPECT_LT(FiniteDifferenceError(*logreg.model, logreg.train), 2e-2);
  ModelConfig smooth = f.model->config();
  smooth.activation = "tanh";
  auto tanh_model = CreateModel(smooth, 0);
  TDA_ASSERT_OK(tanh_model);
  TDA_ASSERT_OK((*tanh_model)->SetParameters(f.model->Parameters()));
  EXPECT_LT(FiniteDifferenceError(**tanh_model, f.train), 2e-2);
}

// Relative error of a Hessian-vector product against central differences of the mean
// gradient (float32 gradients) along a random unit direction.
double FiniteDifferenceError(const Model& model, const Dataset& data) {
  const int64_t dim = model.layout().total();
  Eigen::VectorXd u = Eigen::VectorXd::Random(dim).normalized();
  auto hu = model.CurvatureVectorProduct(data.Rows(0, data.size()), u,
                                         Curvature::kHessian);
  EXPECT_TRUE(hu.ok()) << hu.status();
  auto copy = CreateModel(model.config(), 0);
  EXPECT_TRUE(copy.ok()) << copy.status();
  const Eigen::VectorXf theta = model.Parameters();
  const double eps = 1e-2;
  Eigen::VectorXd mean_grad[2];
  for (int side = 0; side < 2; ++side) {
    const double sign = side == 0 ? 1.0 : -1.0;
    EXPECT_TRUE((*copy)->SetParameters(theta + (sign * eps * u).cast<float>()).ok());
    mean_grad[side] = Gradients(**copy, data).rowwise().mean();
  }
  const Eigen::VectorXd fd = (mean_grad[0] - mean_grad[1]) / (2 * eps);
  const double fd_err = (fd - *hu).norm() / hu->norm();
  std::cout << "D = " << dim << ": Hessian-vector product vs central differences: relative error "
            << fd_err << "\n";
  return fd_err;
}

// LiSSA on the whole training set (deterministic) against the exact damped inverse of the
// same curvature matrix with the same damping: influence scores of test queries over the
// training set.
void LissaMatchesExact(Curvature kind) {
  const Fixture& f = Tiny();
  ASSERT_NE(f.model, nullptr);
  const int64_t dim = f.model->layout().total();
  auto matrix = CurvatureMatrix(*f.model, f.train, kind);
  TDA_ASSERT_OK(matrix);
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eigen(*matrix, Eigen::EigenvaluesOnly);
  const double lo = eigen.eigenvalues().minCoeff(), hi = eigen.eigenvalues().maxCoeff();
  // Damping: the mean eigenvalue (10x the architecture default, so that the recursion
  // converges in ~10^3 steps; at the default it needs ~10^4 steps and reached the same
  // Pearson 1.000 in 170 s), raised for an indefinite Hessian just enough that C + lambda I is
  // positive definite (smallest eigenvalue 0.1 |lo|).
  const double lambda = std::max(matrix->trace() / dim, -1.1 * lo);
  LissaOptions options;
  options.curvature = kind;
  options.damping = lambda;
  options.batch_size = 0;  // whole training set
  auto scale = EstimateLissaScale(*f.model, f.train, options);
  TDA_ASSERT_OK(scale);
  options.scale = *scale;
  // Error after depth steps ~ (1 - (lo + lambda) / s)^depth: take it to ~1e-3.
  options.depth = static_cast<int64_t>(std::ceil(7.0 * options.scale / (lo + lambda)));
  options.tolerance = 0;  // every step, as the depth above says
  std::cout << CurvatureName(kind) << ": eigenvalues [" << lo << ", " << hi << "], lambda "
            << lambda << ", chosen scale " << options.scale << ", depth " << options.depth << "\n";
  EXPECT_GE(2 * options.scale, hi + lambda) << "the chosen scale cannot converge";

  auto exact = ExactPreconditioner::Create(*matrix, lambda);
  TDA_ASSERT_OK(exact);
  auto lissa = LissaPreconditioner::Create(*f.model, f.train, options);
  TDA_ASSERT_OK(lissa);
  const Eigen::MatrixXd train_grads = Gradients(*f.model, f.train);
  const Eigen::MatrixXd query_grads = Gradients(*f.model, f.queries);
  auto exact_ihvp = (*exact)->Apply(query_grads);
  auto lissa_ihvp = (*lissa)->Apply(query_grads);
  TDA_ASSERT_OK(exact_ihvp);
  TDA_ASSERT_OK(lissa_ihvp);
  const Eigen::MatrixXd exact_scores = train_grads.transpose() * *exact_ihvp;
  const Eigen::MatrixXd lissa_scores = train_grads.transpose() * *lissa_ihvp;
  double worst = 1;
  for (int64_t q = 0; q < kQueries; ++q) {
    worst = std::min(worst, Pearson(lissa_scores.col(q), exact_scores.col(q)));
  }
  const double rel = (*lissa_ihvp - *exact_ihvp).norm() / exact_ihvp->norm();
  std::cout << CurvatureName(kind) << ": LiSSA vs exact, worst Pearson over " << kQueries
            << " queries " << worst << ", relative error of the IHVPs " << rel << "\n";
  ::testing::Test::RecordProperty(std::string("lissa_pearson_") + CurvatureName(kind),
                                  std::to_string(worst));
  EXPECT_GE(worst, 0.99);

  // Stochastic batches (64 samples per product), two repeats: reported and loosely held.
  options.batch_size = 64;
  options.repeats = 2;
  auto stochastic = LissaPreconditioner::Create(*f.model, f.train, options);
  TDA_ASSERT_OK(stochastic);
  auto stochastic_ihvp = (*stochastic)->Apply(query_grads);
  TDA_ASSERT_OK(stochastic_ihvp);
  const Eigen::MatrixXd stochastic_scores = train_grads.transpose() * *stochastic_ihvp;
  double mean = 0;
  for (int64_t q = 0; q < kQueries; ++q) {
    mean += Pearson(stochastic_scores.col(q), exact_scores.col(q)) / kQueries;
  }
  std::cout << CurvatureName(kind) << ": stochastic LiSSA (batch 64, 2 repeats), mean Pearson "
            << mean << "\n";
  EXPECT_GE(mean, 0.9);
}

TEST(Lissa, lissa_matches_exact_gauss_newton_on_tiny_mlp) {
  LissaMatchesExact(Curvature::kGaussNewton);
}
TEST(Lissa, lissa_matches_exact_hessian_on_tiny_mlp) { LissaMatchesExact(Curvature::kHessian); }

TEST(Lissa, bad_parameters_are_refused) {
  const Fixture& f = Tiny();
  ASSERT_NE(f.model, nullptr);
  LissaOptions bad;
  bad.damping = -1;
  EXPECT_THAT(LissaPreconditioner::Create(*f.model, f.train, bad),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("damping")));
  bad = LissaOptions{};
  bad.depth = 0;
  EXPECT_THAT(LissaPreconditioner::Create(*f.model, f.train, bad),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("depth")));
  bad = LissaOptions{};
  bad.scale = -1;
  EXPECT_THAT(LissaPreconditioner::Create(*f.model, f.train, bad),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("scale")));
  bad = LissaOptions{};
  bad.repeats = 0;
  EXPECT_THAT(LissaPreconditioner::Create(*f.model, f.train, bad),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("repeats")));
  EXPECT_THAT(LissaPreconditioner::Create(*f.model, Dataset{}, LissaOptions{}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty")));
  auto lissa = LissaPreconditioner::Create(*f.model, f.train, LissaOptions{});
  TDA_ASSERT_OK(lissa);
  EXPECT_THAT((*lissa)->Apply(Eigen::MatrixXd::Ones(3, 1)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("490")));
}

// Power iteration against the eigenvalues of the explicit matrices: it converges from below to
// the top eigenvalue (largest in magnitude for the indefinite Hessian), and the scale made
// from it lets the recursion converge (2 s above the top eigenvalue + lambda).
TEST(Lissa, estimated_scale_comes_from_the_top_eigenvalue) {
  const Fixture& f = Tiny();
  ASSERT_NE(f.model, nullptr);
  for (Curvature kind : {Curvature::kGaussNewton, Curvature::kHessian}) {
    auto matrix = CurvatureMatrix(*f.model, f.train, kind);
    TDA_ASSERT_OK(matrix);
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eigen(*matrix, Eigen::EigenvaluesOnly);
    const double top = eigen.eigenvalues().cwiseAbs().maxCoeff();
    auto estimate = EstimateTopEigenvalue(*f.model, f.train.Rows(0, f.train.size()), kind);
    TDA_ASSERT_OK(estimate);
    std::cout << CurvatureName(kind) << ": top |eigenvalue| " << top << ", power iteration "
              << *estimate << "\n";
    EXPECT_LE(std::abs(*estimate), top * (1 + 1e-9));
    EXPECT_GE(std::abs(*estimate), 0.9 * top);
    LissaOptions options;
    options.curvature = kind;
    options.damping = 0.05;
    options.batch_size = 0;
    auto scale = EstimateLissaScale(*f.model, f.train, options);
    TDA_ASSERT_OK(scale);
    EXPECT_NEAR(*scale, 1.25 * (std::abs(*estimate) + 0.05), 1e-12);
    EXPECT_GT(2 * *scale, eigen.eigenvalues().maxCoeff() + 0.05);
    auto lissa = LissaPreconditioner::Create(*f.model, f.train, options);
    TDA_ASSERT_OK(lissa);
    EXPECT_EQ((*lissa)->options().scale, *scale) << "Create fills in the estimated scale";
  }
}

// With the defaults (Gauss-Newton, estimated scale) and the whole training set per step, the
// recursion stops at its tolerance: the relative residual |v - (C + lambda) x| / |v| of every
// column is at most the tolerance, so the error against the exact damped inverse shrinks with
// it, and a loose tolerance stops sooner with a worse answer.
TEST(Lissa, tolerance_stops_the_recursion_at_its_residual) {
  const Fixture& f = Tiny();
  ASSERT_NE(f.model, nullptr);
  auto gn = CurvatureMatrix(*f.model, f.train, Curvature::kGaussNewton);
  TDA_ASSERT_OK(gn);
  const double lambda = 10 * gn->trace() / static_cast<double>(gn->rows());
  auto exact = ExactPreconditioner::Create(*gn, lambda);
  TDA_ASSERT_OK(exact);
  const Eigen::MatrixXd train_grads = Gradients(*f.model, f.train);
  const Eigen::MatrixXd query_grads = Gradients(*f.model, f.queries);
  auto exact_ihvp = (*exact)->Apply(query_grads);
  TDA_ASSERT_OK(exact_ihvp);
  const Eigen::MatrixXd exact_scores = train_grads.transpose() * *exact_ihvp;
  std::map<double, double> error_at;  // tolerance -> relative error of the IHVPs
  for (double tolerance : {1e-1, 1e-4}) {
    LissaOptions options;
    options.damping = lambda;
    options.tolerance = tolerance;
    options.batch_size = 0;
    auto lissa = LissaPreconditioner::Create(*f.model, f.train, options);
    TDA_ASSERT_OK(lissa);
    auto ihvp = (*lissa)->Apply(query_grads);
    TDA_ASSERT_OK(ihvp);
    const Eigen::MatrixXd residual = query_grads - (*gn * *ihvp + lambda * *ihvp);
    const double worst_residual =
        (residual.colwise().norm().array() / query_grads.colwise().norm().array()).maxCoeff();
    const Eigen::MatrixXd scores = train_grads.transpose() * *ihvp;
    double worst = 1;
    for (int64_t q = 0; q < kQueries; ++q) {
      worst = std::min(worst, Pearson(scores.col(q), exact_scores.col(q)));
    }
    error_at[tolerance] = (*ihvp - *exact_ihvp).norm() / exact_ihvp->norm();
    std::cout << "tolerance " << tolerance << ": scale " << (*lissa)->options().scale
              << ", worst relative residual " << worst_residual << ", worst Pearson " << worst
              << ", relative error " << error_at[tolerance] << "\n";
    // The residual is checked before the last step, which only shrinks it.
    EXPECT_LE(worst_residual, tolerance * 1.0001);
    if (tolerance == 1e-4) {
      EXPECT_GE(worst, 0.999);
    }
  }
  EXPECT_GT(error_at[1e-1], 10 * error_at[1e-4]);
}

TEST(Lissa, diverging_scale_is_reported) {
  const Fixture& f = Tiny();
  ASSERT_NE(f.model, nullptr);
  LissaOptions options;
  options.curvature = Curvature::kGaussNewton;
  options.scale = 1e-3;
  options.depth = 500;
  auto lissa = LissaPreconditioner::Create(*f.model, f.train, options);
  TDA_ASSERT_OK(lissa);
  EXPECT_THAT((*lissa)->Apply(Gradients(*f.model, f.queries)),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       ::testing::AllOf(HasSubstr("LiSSA diverged at iteration"),
                                        HasSubstr("scale 0.001 too small"),
                                        HasSubstr("--lissa-scale 0.01"))));
}

// Served from an index: LiSSA and exact need full gradients and the training data the index
// was built from; they agree with each other, and each missing piece is reported clearly.
TEST(Lissa, attributor_serves_lissa_and_exact_from_a_full_gradient_index) {
  testing::TinyModelSpec spec;
  spec.hidden = {};  // logistic regression on 28x28: D = 7850, Hessian = Gauss-Newton
  spec.train_size = 300;
  spec.epochs = 2;
  TrainRecipe recipe;
  std::unique_ptr<Model> model = testing::TrainTinyModel(spec, &recipe);
  ASSERT_NE(model, nullptr);
  testing::TempDir dir;
  TDA_ASSERT_OK(model->Save(dir.file("model"), recipe));
  IndexBuildOptions build;
  build.model_dir = dir.file("model");
  build.projection_dim_per_side = 0;
  for (const auto& [name, data_dir, projection] :
       {std::make_tuple("full", std::string(kFashionMnistDefaultDir), 0),
        std::make_tuple("nodata", std::string("/nonexistent/fashion-mnist"), 0),
        std::make_tuple("projected", std::string(kFashionMnistDefaultDir), 4)}) {
    build.out_dir = dir.file(name);
    build.projection_dim_per_side = projection;
    TDA_ASSERT_OK(BuildIndex(testing::FashionTrain(300), data_dir, build));
  }
  auto full = Attributor::Open(dir.file("full"));
  TDA_ASSERT_OK(full);
  AttributeOptions options;
  options.return_scores = true;
  options.damping = Damping{};
  options.damping->absolute = 0.1;
  options.lissa.batch_size = 0;
  options.lissa.scale = 10;
  options.lissa.depth = 700;  // error ~ (1 - 0.1 / 10)^700 ~ 1e-3
  options.lissa.tolerance = 0;
  options.lissa.curvature = Curvature::kHessian;
  options.exact_curvature = Curvature::kHessian;
  const std::vector<Query> queries = {{"fashion-mnist/test/0", {}, -1, {}},
                                      {"fashion-mnist/test/1", {}, -1, {}}};
  options.method = Method::kLissa;
  auto lissa = (*full)->Attribute(queries, options);
  TDA_ASSERT_OK(lissa);
  options.method = Method::kExact;
  auto exact = (*full)->Attribute(queries, options);
  TDA_ASSERT_OK(exact);
  for (size_t q = 0; q < queries.size(); ++q) {
    const Eigen::Map<const Eigen::VectorXf> a((*lissa)[q].scores.data(), (*lissa)[q].scores.size());
    const Eigen::Map<const Eigen::VectorXf> b((*exact)[q].scores.data(), (*exact)[q].scores.size());
    const double r = Pearson(a.cast<double>(), b.cast<double>());
    std::cout << "index query " << q << ": LiSSA vs exact Pearson " << r << "\n";
    EXPECT_GE(r, 0.99);
  }
  // Untuned, as `tda query --method lissa` with no LiSSA flags asks (Gauss-Newton, estimated
  // scale, tolerance stop), on all rows per product so the check is deterministic.
  AttributeOptions untuned;
  untuned.return_scores = true;
  untuned.damping = options.damping;
  untuned.lissa.batch_size = 0;
  untuned.method = Method::kLissa;
  auto untuned_lissa = (*full)->Attribute(queries, untuned);
  TDA_ASSERT_OK(untuned_lissa);
  untuned.method = Method::kExact;
  auto untuned_exact = (*full)->Attribute(queries, untuned);
  TDA_ASSERT_OK(untuned_exact);
  for (size_t q = 0; q < queries.size(); ++q) {
    const auto& a = (*untuned_lissa)[q].scores;
    const auto& b = (*untuned_exact)[q].scores;
    const double r = Pearson(Eigen::Map<const Eigen::VectorXf>(a.data(), a.size()).cast<double>(),
                             Eigen::Map<const Eigen::VectorXf>(b.data(), b.size()).cast<double>());
    std::cout << "index query " << q << ", untuned LiSSA vs exact Pearson " << r << "\n";
    EXPECT_GE(r, 0.99);
  }

  options.lissa.scale = 1e-3;
  options.method = Method::kLissa;
  EXPECT_THAT((*full)->Attribute(queries, options),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("LiSSA diverged")));

  const Dataset& test = testing::FashionTest(1);
  const Query raw{"", std::vector<float>(test.row(0), test.row(0) + 784), 1, {}};
  auto nodata = Attributor::Open(dir.file("nodata"));
  TDA_ASSERT_OK(nodata);
  EXPECT_THAT((*nodata)->Attribute({raw}, options),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       ::testing::AllOf(HasSubstr("training data"), HasSubstr("/nonexistent"))));
  auto projected = Attributor::Open(dir.file("projected"));
  TDA_ASSERT_OK(projected);
  options.method = Method::kExact;
  EXPECT_THAT((*projected)->Attribute({raw}, options),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("full gradients")));
}

}  // namespace
}  // namespace tda
