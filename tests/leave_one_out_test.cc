// Leave-one-out ground truth (Koh & Liang 2017) on Fashion-MNIST multinomial logistic
// regression with L2 (an mlp without hidden layers, 14x14 inputs: D = 10 * 197 = 1970, N =
// 1000): retrain without each of the top-20 and 20 random training samples by exact predicted
// influence, and correlate the actual change of the query loss with each method's prediction.
#include "ablation/leave_one_out.h"

#include <Eigen/Eigenvalues>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "curvature/ekfac.h"
#include "curvature/exact.h"
#include "curvature/factor_fitting.h"
#include "curvature/gradient_dot.h"
#include "curvature/lissa.h"
#include "test_support.h"

namespace tda {
namespace {

using ::testing::HasSubstr;
using testing::StatusIs;

constexpr int64_t kSide = 14;
constexpr int64_t kTrain = 1000;
constexpr double kWeightDecay = 0.01;

TEST(LeaveOneOut, refuses_a_non_convex_objective_and_bad_rows) {
  testing::TinyModelSpec spec;
  spec.hidden = {};
  spec.train_size = 100;
  spec.epochs = 1;
  spec.input_side = 7;
  std::unique_ptr<Model> model = testing::TrainTinyModel(spec);
  ASSERT_NE(model, nullptr);
  const Dataset train = testing::Downsample(testing::FashionTrain(100), 7);
  NewtonOptions options;
  options.weight_decay = 0;
  EXPECT_THAT(MinimizeRegularizedLoss(*model, train, -1, options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("weight decay > 0")));
  options.weight_decay = kWeightDecay;
  EXPECT_THAT(MinimizeRegularizedLoss(*model, train, 100, options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("excluded sample 100")));
}

TEST(LeaveOneOut, exact_influence_predicts_leave_one_out_on_logistic_regression) {
  testing::TinyModelSpec spec;
  spec.hidden = {};
  spec.train_size = kTrain;
  spec.epochs = 3;
  spec.weight_decay = kWeightDecay;
  spec.input_side = kSide;
  std::unique_ptr<Model> model = testing::TrainTinyModel(spec);
  ASSERT_NE(model, nullptr);
  const Dataset train = testing::Downsample(testing::FashionTrain(kTrain), kSide);
  const Dataset test = testing::Downsample(testing::FashionTest(20), kSide);

  // Converge the warm start to the optimum of the L2-regularised mean loss.
  NewtonOptions newton;
  newton.weight_decay = kWeightDecay;
  auto converged = MinimizeRegularizedLoss(*model, train, -1, newton);
  TDA_ASSERT_OK(converged);
  std::cout << "optimum: " << converged->steps << " Newton steps, " << converged->cg_iterations
            << " CG iterations, objective " << converged->objective << ", |grad| "
            << converged->gradient_norm << "\n";
  EXPECT_LT(converged->gradient_norm, 1e-5);

  // Query: the test image with the highest loss among the first 20.
  int64_t query = 0;
  double worst = -1;
  for (int64_t q = 0; q < test.size(); ++q) {
    auto capture = model->Capture(test.Rows(q, q + 1));
    TDA_ASSERT_OK(capture);
    if (capture->losses[0] > worst) worst = capture->losses[0], query = q;
  }
  const float* x = test.row(query);
  const int32_t y = test.labels[query];

  // Every method inverts the Hessian of the mean loss + weight_decay I (the damping is the L2).
  const int64_t dim = model->layout().total();
  auto hessian = HessianMatrix(*model, train);
  TDA_ASSERT_OK(hessian);
  auto exact = ExactPreconditioner::Create(*hessian, kWeightDecay);
  TDA_ASSERT_OK(exact);
  LissaOptions lissa_options;
  lissa_options.damping = kWeightDecay;
  lissa_options.batch_size = 256;
  lissa_options.repeats = 2;
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eigen(*hessian, Eigen::EigenvaluesOnly);
  auto scale = EstimateLissaScale(*model, train, lissa_options);
  TDA_ASSERT_OK(scale);
  lissa_options.scale = *scale;
  lissa_options.depth = static_cast<int64_t>(std::ceil(7 * lissa_options.scale / kWeightDecay));
  lissa_options.tolerance = 0;  // every step of that depth
  auto lissa = LissaPreconditioner::Create(*model, train, lissa_options);
  TDA_ASSERT_OK(lissa);
  auto fitted = FitKroneckerFactors(*model, train, FitOptions{});
  TDA_ASSERT_OK(fitted);
  auto factors = std::make_shared<const KroneckerFactors>(std::move(*fitted));
  Damping damping;
  damping.absolute = kWeightDecay;
  auto ekfac = KroneckerPreconditioner::Create(factors, Method::kEkfac, damping);
  auto kfac = KroneckerPreconditioner::Create(factors, Method::kKfac, damping);
  TDA_ASSERT_OK(ekfac);
  TDA_ASSERT_OK(kfac);
  GradientDotPreconditioner dot(dim);
  std::cout << "Hessian eigenvalues [" << eigen.eigenvalues().minCoeff() << ", "
            << eigen.eigenvalues().maxCoeff() << "] + " << kWeightDecay << "; LiSSA scale "
            << lissa_options.scale << ", depth " << lissa_options.depth << "\n";

  std::vector<LooMethod> methods;
  const std::vector<std::pair<std::string, const Preconditioner*>> all = {{"exact", exact->get()},
                                                                          {"lissa", lissa->get()},
                                                                          {"ekfac", ekfac->get()},
                                                                          {"kfac", kfac->get()},
                                                                          {"gradient-dot", &dot}};
  for (const auto& [name, preconditioner] : all) {
    auto predicted = PredictRemovalEffects(*model, train, x, y, *preconditioner);
    TDA_ASSERT_OK(predicted);
    methods.push_back({name, *predicted});
  }
  LooOptions options;
  options.newton = newton;
  options.top_k = 20;
  options.random = 20;
  auto result = LeaveOneOut(*model, train, x, y, methods, options);
  TDA_ASSERT_OK(result);

  std::cout << "query fashion-mnist/test/" << query << " (label " << y << ", loss "
            << result->query_loss << "), " << result->removed.size() << " retrainings\n"
            << std::setprecision(4);
  for (size_t m = 0; m < result->methods.size(); ++m) {
    std::cout << "  " << std::setw(13) << result->methods[m] << ": LOO Pearson "
              << result->pearson[m] << "\n";
    ::testing::Test::RecordProperty("loo_pearson_" + result->methods[m],
                                    std::to_string(result->pearson[m]));
  }
  EXPECT_GE(result->pearson[0], 0.95) << "exact";
  EXPECT_GE(result->pearson[1], 0.95) << "lissa";
}

}  // namespace
}  // namespace tda
