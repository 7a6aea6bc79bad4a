// How good an approximation EK-FAC is: influence scores against the exact damped Gauss-Newton
// influence on a tiny MLP trained for real on Fashion-MNIST. The numbers are measured and
// reported, never tuned: the damping levels are 1x, 10x and 100x the architecture default
// (0.1 x mean eigenvalue), and every method uses the same absolute damping at each level.
#include <chrono>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "curvature/ekfac.h"
#include "curvature/exact.h"
#include "curvature/factor_fitting.h"
#include "curvature/gradient_dot.h"
#include "grad/per_sample_gradients.h"
#include "common/statistics.h"
#include "test_support.h"

namespace tda {
namespace {

constexpr int64_t kSide = 14;  // 14x14 inputs, hidden 16: D = 16 * 197 + 10 * 17 = 3322
constexpr int64_t kTrain = 1000;
constexpr int64_t kQueries = 10;

Eigen::MatrixXd Gradients(const Model& model, const Dataset& data) {
  auto capture = model.Capture(data.Rows(0, data.size()));
  EXPECT_TRUE(capture.ok()) << capture.status();
  return PerSampleGradientColumns(*capture, model.layout());
}

// The Gauss-Newton block of the last layer has a closed form (its output is the logits):
// mean_i (diag(p_i) - p_i p_i^T) kron (a_i a_i^T), with a_i the layer's input plus the 1.
TEST(EkfacAccuracy, GaussNewtonMatrixMatchesClosedFormForLastLayer) {
  testing::TinyModelSpec spec;
  spec.hidden = {8};
  spec.train_size = 300;
  spec.epochs = 2;
  spec.input_side = 7;
  std::unique_ptr<Model> model = testing::TrainTinyModel(spec);
  ASSERT_NE(model, nullptr);
  const Dataset data = testing::Downsample(testing::FashionTrain(200), 7);
  auto gn = GaussNewtonMatrix(*model, data);
  TDA_ASSERT_OK(gn);
  const TrackedLayer& last = model->layout().layers.back();
  auto probs = model->Predict(data.Rows(0, data.size()));
  auto capture = model->Capture(data.Rows(0, data.size()));
  TDA_ASSERT_OK(probs);
  TDA_ASSERT_OK(capture);
  Eigen::MatrixXd want = Eigen::MatrixXd::Zero(last.size(), last.size());
  for (int64_t i = 0; i < data.size(); ++i) {
    const Eigen::VectorXd p = probs->row(i).transpose().cast<double>();
    const Eigen::MatrixXd h = Eigen::MatrixXd(p.asDiagonal()) - p * p.transpose();
    const Eigen::VectorXd a = capture->layers.back().a.row(i).transpose().cast<double>();
    const Eigen::MatrixXd aa = a * a.transpose();
    for (int64_t c = 0; c < last.out; ++c)
      for (int64_t d = 0; d < last.out; ++d)
        want.block(c * last.cols(), d * last.cols(), last.cols(), last.cols()) += h(c, d) * aa;
  }
  want /= static_cast<double>(data.size());
  const Eigen::MatrixXd got = gn->block(last.offset, last.offset, last.size(), last.size());
  EXPECT_LT((got - want).norm() / want.norm(), 1e-5);
  EXPECT_LT((*gn - gn->transpose()).norm(), 1e-12 * gn->norm());
}

// Trains the model of `spec`, fits EK-FAC on its training set and compares influence scores of
// kQueries test images over all training samples with the exact damped Gauss-Newton influence.
void CompareWithExact(const testing::TinyModelSpec& spec) {
  const int64_t side = spec.input_side > 0 ? spec.input_side : 28;
  const int64_t n_train = spec.train_size;
  using Clock = std::chrono::steady_clock;
  auto seconds = [](Clock::time_point since) {
    return std::chrono::duration<double>(Clock::now() - since).count();
  };
  Clock::time_point start = Clock::now();
  std::unique_ptr<Model> model = testing::TrainTinyModel(spec);
  ASSERT_NE(model, nullptr);
  std::cout << "trained in " << seconds(start) << " s\n";
  const Dataset train = testing::Downsample(testing::FashionTrain(n_train), side);
  const Dataset queries = testing::Downsample(testing::FashionTest(kQueries), side);
  const int64_t dim = model->layout().total();

  start = Clock::now();
  auto gn = GaussNewtonMatrix(*model, train);
  TDA_ASSERT_OK(gn);
  std::cout << "exact Gauss-Newton matrix in " << seconds(start) << " s\n";
  start = Clock::now();
  auto fitted = FitKroneckerFactors(*model, train, FitOptions{});  // true Fisher, seed 0
  TDA_ASSERT_OK(fitted);
  std::cout << "EK-FAC factors in " << seconds(start) << " s\n";
  auto factors = std::make_shared<const KroneckerFactors>(std::move(*fitted));
  const Eigen::MatrixXd train_grads = Gradients(*model, train);    // D x N
  const Eigen::MatrixXd query_grads = Gradients(*model, queries);  // D x Q

  // Default damping of the whole model: 0.1 x the mean EK-FAC eigenvalue over all D
  // parameters (each layer's mean weighted by its size; ~ 0.1 x trace(GN) / D).
  double eigen_sum = 0;
  for (const LayerFactors& f : factors->layers) eigen_sum += f.corrected.sum();
  const double base = 0.1 * eigen_sum / static_cast<double>(dim);
  std::cout << "MLP " << side * side << "-" << spec.hidden[0] << "-10 (" << side << "x" << side
            << " inputs), " << spec.epochs << " epochs, D = " << dim << ", N = " << n_train << ", "
            << kQueries << " test queries; trace(GN)/D = " << gn->trace() / dim
            << ", mean EK-FAC eigenvalue = " << eigen_sum / dim << "\n";

  GradientDotPreconditioner dot(dim);
  const Eigen::MatrixXd dot_scores = train_grads.transpose() * *dot.Apply(query_grads);
  for (double multiple : {1.0, 10.0, 100.0}) {
    const double lambda = multiple * base;
    start = Clock::now();
    auto exact = ExactPreconditioner::Create(*gn, lambda);
    TDA_ASSERT_OK(exact);
    std::cout << "Cholesky in " << seconds(start) << " s\n";
    Damping damping;
    damping.absolute = lambda;
    auto ekfac = KroneckerPreconditioner::Create(factors, Method::kEkfac, damping);
    auto kfac = KroneckerPreconditioner::Create(factors, Method::kKfac, damping);
    Damping per_layer;  // the product's default: relative damping per layer
    per_layer.relative = 0.1 * multiple;
    auto ekfac_layer = KroneckerPreconditioner::Create(factors, Method::kEkfac, per_layer);
    TDA_ASSERT_OK(ekfac);
    TDA_ASSERT_OK(kfac);
    TDA_ASSERT_OK(ekfac_layer);
    const Eigen::MatrixXd exact_scores = train_grads.transpose() * *(*exact)->Apply(query_grads);
    const std::vector<std::pair<std::string, Eigen::MatrixXd>> methods = {
        {"ekfac", train_grads.transpose() * *(*ekfac)->Apply(query_grads)},
        {"kfac", train_grads.transpose() * *(*kfac)->Apply(query_grads)},
        {"gradient-dot", dot_scores},
        {"ekfac/layer", train_grads.transpose() * *(*ekfac_layer)->Apply(query_grads)},
    };
    std::vector<Eigen::VectorXd> pearson(methods.size(), Eigen::VectorXd(kQueries));
    for (size_t m = 0; m < methods.size(); ++m) {
      for (int64_t q = 0; q < kQueries; ++q) {
        pearson[m](q) = Pearson(methods[m].second.col(q), exact_scores.col(q));
      }
    }
    std::ostringstream table;
    table << std::fixed << std::setprecision(3);
    table << "damping " << multiple << "x default (lambda = " << std::setprecision(6) << lambda
          << std::setprecision(3) << "): Pearson vs exact influence per query\n";
    table << "  query " << std::setw(8) << "ekfac" << std::setw(8) << "kfac" << std::setw(14)
          << "gradient-dot" << std::setw(13) << "ekfac/layer"
          << "\n";
    for (int64_t q = 0; q < kQueries; ++q) {
      table << "  " << std::setw(5) << q << " " << std::setw(8) << pearson[0](q) << std::setw(8)
            << pearson[1](q) << std::setw(14) << pearson[2](q) << std::setw(13) << pearson[3](q)
            << "\n";
    }
    table << "  mean  " << std::setw(8) << pearson[0].mean() << std::setw(8) << pearson[1].mean()
          << std::setw(14) << pearson[2].mean() << std::setw(13) << pearson[3].mean() << "\n";
    table << "  (ekfac, kfac: the same absolute lambda as exact; gradient-dot: no curvature;\n"
          << "   ekfac/layer: the product default, " << 0.1 * multiple
          << " x each layer's mean eigenvalue,\n"
          << "   a damping that differs from exact's: informational, not asserted)\n";
    std::cout << table.str();
    const std::string suffix = "_" + std::to_string(static_cast<int>(multiple)) + "x";
    for (size_t m = 0; m < methods.size(); ++m) {
      ::testing::Test::RecordProperty("mean_pearson_" + methods[m].first + suffix,
                                      std::to_string(pearson[m].mean()));
    }

    // The claims the issue makes, checked as measured.
    for (int64_t q = 0; q < kQueries; ++q) {
      EXPECT_GT(pearson[0](q), pearson[2](q))
          << "query " << q << " at " << multiple << "x: EK-FAC does not beat gradient-dot";
    }
    EXPECT_GE(pearson[0].mean(), pearson[1].mean() - 0.05) << "at " << multiple << "x";
  }
}

TEST(EkfacAccuracy, ekfac_vs_exact_influence_on_tiny_mlp) {
  testing::TinyModelSpec spec;
  spec.hidden = {16};
  spec.train_size = kTrain;
  spec.epochs = 5;
  spec.input_side = kSide;
  CompareWithExact(spec);
}

// The same measurement on full 28x28 inputs (784-16-10, D = 12730), closer to the reference
// 784-64-10 run in the issue; minutes on 2 cores, so run by hand:
//   ekfac_accuracy_test --gtest_also_run_disabled_tests --gtest_filter='*784*'
TEST(EkfacAccuracy, DISABLED_ekfac_vs_exact_influence_on_784_16_10) {
  testing::TinyModelSpec spec;
  spec.hidden = {16};
  spec.train_size = kTrain;
  spec.epochs = 5;
  CompareWithExact(spec);
}

}  // namespace
}  // namespace tda
