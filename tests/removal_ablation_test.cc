// The counterfactual test of the attribution literature, on a real Fashion-MNIST MLP retrained
// for real: removing a query's top EK-FAC proponents raises its loss after retraining clearly
// more than removing as many random samples; and for one removal set measured on many test
// queries, predicted and retrained loss changes correlate positively.
#include "ablation/removal_ablation.h"

#include <algorithm>
#include <numeric>
#include <random>

#include "data/fashion_mnist.h"
#include "test_support.h"

namespace tda {
namespace {

using testing::StatusIs;

constexpr int64_t kTrain = 1000;

struct TrainedModel {
  std::unique_ptr<Model> model;
  TrainRecipe recipe;
  std::unique_ptr<testing::InMemoryEkfacScorer> scorer;
};

const TrainedModel& Trained() {
  static TrainedModel* trained = [] {
    auto* t = new TrainedModel;
    testing::TinyModelSpec spec;
    spec.hidden = {32};
    spec.train_size = kTrain;
    spec.epochs = 8;
    spec.weight_decay = 1e-3;
    t->model = testing::TrainTinyModel(spec, &t->recipe);
    t->scorer = std::make_unique<testing::InMemoryEkfacScorer>(*t->model,
                                                                 testing::FashionTrain(kTrain));
    return t;
  }();
  return *trained;
}

TEST(RemovalAblation, TopProponentsMatterMoreThanRandomSamples) {
  const TrainedModel& s = Trained();
  const Dataset& train = testing::FashionTrain(kTrain);
  const Dataset queries = testing::FashionTest(8);
  RemovalAblationOptions options;
  options.newton = false;
  constexpr int64_t kRemoved = 40;
  std::mt19937_64 rng(11);
  double top_total = 0, random_total = 0;
  int top_wins = 0;
  for (int64_t q = 0; q < queries.size(); ++q) {
    const std::vector<AblationTask> task = {{"query", queries.Select({q})}};
    auto scores = s.scorer->Score(task[0].queries.Rows(0, 1));
    TDA_ASSERT_OK(scores);
    std::vector<int64_t> order(kTrain);
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + kRemoved, order.end(),
                      [&](int64_t a, int64_t b) { return (*scores)(a, 0) > (*scores)(b, 0); });
    const std::vector<int64_t> top(order.begin(), order.begin() + kRemoved);
    std::shuffle(order.begin(), order.end(), rng);
    const std::vector<int64_t> random(order.begin(), order.begin() + kRemoved);

    auto with_top = RunRemovalAblation(*s.model, s.recipe, train, top, task, s.scorer->AsFunction(), options);
    auto with_random = RunRemovalAblation(*s.model, s.recipe, train, random, task, s.scorer->AsFunction(), options);
    TDA_ASSERT_OK(with_top);
    TDA_ASSERT_OK(with_random);
    const QueryEffect& t = with_top->tasks[0].queries[0];
    const QueryEffect& r = with_random->tasks[0].queries[0];
    EXPECT_GT(t.predicted, 0) << "top proponents are predicted to raise the loss";
    top_total += *t.retrained;
    random_total += *r.retrained;
    top_wins += *t.retrained > *r.retrained;
    std::printf("query %lld: loss %.3f, top-%lld removed: predicted %+.4f retrained %+.4f; "
                "random: predicted %+.4f retrained %+.4f\n",
                static_cast<long long>(q), t.base_loss, static_cast<long long>(kRemoved),
                t.predicted, *t.retrained, r.predicted, *r.retrained);
  }
  const double n = static_cast<double>(queries.size());
  std::printf("mean retrained change: top proponents %+.4f, random %+.4f; top wins %d of %lld\n",
              top_total / n, random_total / n, top_wins, static_cast<long long>(queries.size()));
  EXPECT_GT(top_total / n, 0.05) << "removing the top proponents must raise the loss";
  EXPECT_GT(top_total / n, 3 * std::max(0.0, random_total / n));
  EXPECT_GE(top_wins, 7);
}

TEST(RemovalAblation, PredictedNewtonAndRetrainedChangesCorrelate) {
  const TrainedModel& s = Trained();
  const Dataset& train = testing::FashionTrain(kTrain);
  // Remove 60 training images of class 5 (Sandal); measure every class's test images.
  std::vector<int64_t> removed;
  for (int64_t i = 0; i < kTrain && removed.size() < 60; ++i) {
    if (train.labels[i] == 5) removed.push_back(i);
  }
  const Dataset& test = testing::FashionTest(300);
  std::vector<int64_t> sandals, others;
  for (int64_t i = 0; i < test.size(); ++i) (test.labels[i] == 5 ? sandals : others).push_back(i);
  others.resize(60);
  const std::vector<AblationTask> tasks = {{"test Sandal", test.Select(sandals)},
                                           {"test other classes", test.Select(others)}};
  testing::TempDir dir;
  RemovalAblationOptions options;
  options.unlearned_model_dir = dir.file("unlearned");
  auto result = RunRemovalAblation(*s.model, s.recipe, train, removed, tasks, s.scorer->AsFunction(), options);
  TDA_ASSERT_OK(result);
  for (const TaskEffect& task : result->tasks) {
    std::printf("%-20s %3zu queries: mean change predicted %+.4f newton %+.4f retrained %+.4f\n",
                task.name.c_str(), task.queries.size(), task.mean_predicted, *task.mean_newton,
                *task.mean_retrained);
  }
  std::printf("Pearson across %zu queries: predicted~retrained %.3f, newton~retrained %.3f, "
              "predicted~newton %.3f (%.1f s predict, %.1f s newton, %.1f s retrain)\n",
              sandals.size() + others.size(), *result->pearson_predicted_retrained,
              *result->pearson_newton_retrained, *result->pearson_predicted_newton,
              result->seconds_predicted, result->seconds_newton, result->seconds_retrain);
  EXPECT_GT(*result->tasks[0].mean_retrained, *result->tasks[1].mean_retrained)
      << "removing sandals hurts sandals most";
  EXPECT_GT(result->tasks[0].mean_predicted, result->tasks[1].mean_predicted);
  EXPECT_GT(*result->pearson_predicted_retrained, 0.3);
  EXPECT_GT(*result->pearson_newton_retrained, 0.3);
  EXPECT_GT(*result->pearson_predicted_newton, 0.5);
  // The unlearned model was written and loads.
  auto unlearned = LoadModel(dir.file("unlearned"));
  TDA_ASSERT_OK(unlearned);
  EXPECT_NE((*unlearned)->Fingerprint(), s.model->Fingerprint());
}

TEST(RemovalAblation, RefusesBadRemovalSets) {
  const TrainedModel& s = Trained();
  const Dataset& train = testing::FashionTrain(kTrain);
  const std::vector<AblationTask> tasks = {{"q", testing::FashionTest(2)}};
  RemovalAblationOptions options;
  options.retrain = false;
  EXPECT_THAT(RunRemovalAblation(*s.model, s.recipe, train, {}, tasks, s.scorer->AsFunction(), options),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("no training")));
  EXPECT_THAT(RunRemovalAblation(*s.model, s.recipe, train, {3, 3}, tasks, s.scorer->AsFunction(), options),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("twice")));
  EXPECT_THAT(RunRemovalAblation(*s.model, s.recipe, train, {kTrain}, tasks, s.scorer->AsFunction(), options),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("not in")));
  EXPECT_THAT(RunRemovalAblation(*s.model, s.recipe, train, {1}, {}, s.scorer->AsFunction(), options),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("no tasks")));
}

}  // namespace
}  // namespace tda
