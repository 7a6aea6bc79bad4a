// The query path end to end on a real trained model and a real index: scores equal a direct
// computation from per-sample gradients, survive a reopen bit for bit, and bad queries or
// damaged index files are refused with clear errors.
#include "attribution/attributor.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "curvature/ekfac.h"
#include "data/fashion_mnist.h"
#include "grad/per_sample_gradients.h"
#include "index/index_builder.h"
#include "common/statistics.h"
#include "test_support.h"

namespace tda {
namespace {

using ::testing::HasSubstr;
using testing::StatusIs;

constexpr int64_t kTrain = 600;

// One trained model and two indexes (exact gradients, and projected), shared by the tests.
struct Built {
  testing::TempDir dir;
  std::string model_dir, exact_dir, projected_dir;
};

const Built& BuildOnce() {
  static Built* built = [] {
    auto* b = new Built;
    testing::TinyModelSpec spec;
    spec.hidden = {16};
    spec.train_size = kTrain;
    spec.epochs = 3;
    TrainRecipe recipe;
    auto model = testing::TrainTinyModel(spec, &recipe);
    b->model_dir = b->dir.file("model");
    b->exact_dir = b->dir.file("exact");
    b->projected_dir = b->dir.file("projected");
    EXPECT_TRUE(model->Save(b->model_dir, recipe).ok());
    IndexBuildOptions options;
    options.model_dir = b->model_dir;
    options.batch_size = 128;
    options.rows_per_shard = 250;  // several shards
    options.projection_dim_per_side = 0;
    options.out_dir = b->exact_dir;
    EXPECT_TRUE(BuildIndex(testing::FashionTrain(kTrain), kFashionMnistDefaultDir, options).ok());
    options.projection_dim_per_side = 8;
    options.out_dir = b->projected_dir;
    EXPECT_TRUE(BuildIndex(testing::FashionTrain(kTrain), kFashionMnistDefaultDir, options).ok());
    return b;
  }();
  return *built;
}

TEST(Attributor, ExactIndexScoresEqualDirectInfluence) {
  const Built& b = BuildOnce();
  auto attributor = Attributor::Open(b.exact_dir);
  TDA_ASSERT_OK(attributor);
  const Model& model = (*attributor)->model();
  const Dataset& train = testing::FashionTrain(kTrain);
  const Dataset& test = testing::FashionTest(3);
  auto train_capture = model.Capture(train.Rows(0, train.size()));
  auto query_capture = model.Capture(test.Rows(0, 3));
  TDA_ASSERT_OK(train_capture);
  TDA_ASSERT_OK(query_capture);
  const Eigen::MatrixXd g_train = PerSampleGradientColumns(*train_capture, model.layout());
  const Eigen::MatrixXd g_query = PerSampleGradientColumns(*query_capture, model.layout());
  auto factors = LoadFactors(b.exact_dir + "/factors.safetensors");
  TDA_ASSERT_OK(factors);
  auto shared = std::make_shared<const KroneckerFactors>(std::move(*factors));

  for (Method method : {Method::kEkfac, Method::kKfac, Method::kGradientDot}) {
    AttributeOptions options;
    options.method = method;
    options.top_k = 5;
    options.return_scores = true;
    std::vector<Query> queries;
    for (int i = 0; i < 3; ++i) queries.push_back({absl::StrCat("fashion-mnist/test/", i), {}, -1, {}});
    auto results = (*attributor)->Attribute(queries, options);
    TDA_ASSERT_OK(results);
    Eigen::MatrixXd preconditioned = g_query;
    if (method != Method::kGradientDot) {
      auto p = KroneckerPreconditioner::Create(shared, method, Damping{});
      TDA_ASSERT_OK(p);
      preconditioned = (*p)->Apply(g_query).value();
    }
    const Eigen::MatrixXd expected = g_train.transpose() * preconditioned;  // N x Q
    for (int q = 0; q < 3; ++q) {
      const QueryResult& r = (*results)[q];
      ASSERT_EQ(static_cast<int64_t>(r.scores.size()), kTrain);
      const double scale = expected.col(q).cwiseAbs().maxCoeff();
      for (int64_t i = 0; i < kTrain; ++i) {
        ASSERT_NEAR(r.scores[i], expected(i, q), 1e-4 * scale) << MethodName(method) << " row " << i;
      }
      // Top-k lists are the k largest / smallest scores, in order.
      Eigen::Index best, worst;
      expected.col(q).maxCoeff(&best);
      expected.col(q).minCoeff(&worst);
      EXPECT_EQ(r.proponents.front().row, best);
      EXPECT_EQ(r.opponents.front().row, worst);
      EXPECT_EQ(r.proponents.front().id, absl::StrCat("fashion-mnist/train/", best));
      for (size_t k = 1; k < r.proponents.size(); ++k) {
        EXPECT_GE(r.proponents[k - 1].score, r.proponents[k].score);
        EXPECT_LE(r.opponents[k - 1].score, r.opponents[k].score);
      }
      // The readable figures: score / N, and the share of all rows scoring at most the hit
      // (counted from the full score vector; ties among the top rows are not expected).
      for (const std::vector<Hit>* hits : {&r.proponents, &r.opponents}) {
        for (const Hit& hit : *hits) {
          EXPECT_DOUBLE_EQ(hit.loss_change, hit.score / kTrain);
          const int64_t at_most = std::count_if(r.scores.begin(), r.scores.end(),
                                                [&](float s) { return s <= r.scores[hit.row]; });
          EXPECT_NEAR(hit.percentile, 100.0 * at_most / kTrain, 1e-9) << hit.id;
        }
      }
      EXPECT_DOUBLE_EQ(r.proponents.front().percentile, 100.0);
      EXPECT_EQ(r.true_label, test.labels[q]);
      EXPECT_EQ(r.label, test.labels[q]);
      EXPECT_NEAR(r.loss, query_capture->losses[q], 1e-6);
    }
  }
}

std::vector<double> AsDouble(const std::vector<float>& v) { return {v.begin(), v.end()}; }

TEST(Attributor, ReopenedIndexGivesIdenticalScores) {
  const Built& b = BuildOnce();
  AttributeOptions options;
  options.return_scores = true;
  std::vector<Query> queries = {{"fashion-mnist/test/7", {}, -1, {}}};
  std::vector<float> first;
  {
    auto a = Attributor::Open(b.projected_dir);
    TDA_ASSERT_OK(a);
    first = (*a)->Attribute(queries, options).value()[0].scores;
  }
  auto a = Attributor::Open(b.projected_dir);
  TDA_ASSERT_OK(a);
  EXPECT_EQ((*a)->Attribute(queries, options).value()[0].scores, first);
}

// Curvature lives in the projected subspace (LoGra): projected EK-FAC scores approach the
// exact-gradient EK-FAC scores as the projection grows. Measured, not tuned: the input side of
// the first layer (785 -> k) is where the subspace loses the low-variance directions that the
// inverse curvature amplifies, so convergence is slower than for plain gradient dot products.
TEST(Attributor, ProjectedScoresConvergeToExactGradientScores) {
  const Built& b = BuildOnce();
  auto exact = Attributor::Open(b.exact_dir);
  TDA_ASSERT_OK(exact);
  AttributeOptions options;
  options.return_scores = true;
  std::vector<Query> queries;
  for (int q = 0; q < 6; ++q) queries.push_back({absl::StrCat("fashion-mnist/test/", q), {}, -1, {}});
  const auto reference = (*exact)->Attribute(queries, options).value();
  double previous = -1;
  for (int64_t k : {8, 64, 512}) {
    testing::TempDir dir;
    IndexBuildOptions build;
    build.model_dir = b.model_dir;
    build.out_dir = dir.path();
    build.projection_dim_per_side = k;
    TDA_ASSERT_OK(BuildIndex(testing::FashionTrain(kTrain), kFashionMnistDefaultDir, build));
    auto projected = Attributor::Open(dir.path());
    TDA_ASSERT_OK(projected);
    const auto results = (*projected)->Attribute(queries, options).value();
    double mean = 0;
    for (size_t q = 0; q < queries.size(); ++q) mean += Pearson(AsDouble(results[q].scores), AsDouble(reference[q].scores)) / queries.size();
    std::cout << "EK-FAC, projection " << k << " per side (" << (*projected)->index().dim()
              << " dims): mean Pearson vs exact gradients " << mean << "\n";
    RecordProperty(absl::StrCat("pearson_k", k), std::to_string(mean));
    EXPECT_GT(mean, previous);
    previous = mean;
  }
  EXPECT_GT(previous, 0.9);
}

TEST(Attributor, RefusesMalformedQueries) {
  const Built& b = BuildOnce();
  auto a = Attributor::Open(b.projected_dir);
  TDA_ASSERT_OK(a);
  AttributeOptions options;
  auto ask = [&](Query q) { return (*a)->Attribute({q}, options); };
  EXPECT_THAT(ask({"fashion-mnist/test/99999", {}, -1, {}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unknown sample id")));
  EXPECT_THAT(ask({"cifar/test/1", {}, -1, {}}), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cifar")));
  EXPECT_THAT(ask({"", std::vector<float>(10, 0.f), 1, {}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("10 features")));
  EXPECT_THAT(ask({"", std::vector<float>(784, 0.f), -1, {}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("needs a label")));
  std::vector<float> nan_input(784, 0.f);
  nan_input[5] = std::nanf("");
  EXPECT_THAT(ask({"", nan_input, 2, {}}), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not finite")));
  EXPECT_THAT(ask({"fashion-mnist/test/1", {}, 10, {}}), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("label 10")));
  options.top_k = 0;
  EXPECT_THAT(ask({"fashion-mnist/test/1", {}, -1, {}}), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("top_k")));
  options.top_k = 5;
  EXPECT_THAT((*a)->Attribute({}, options), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no queries")));
  options.method = Method::kLissa;
  EXPECT_THAT(ask({"fashion-mnist/test/1", {}, -1, {}}), StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("lissa")));
  options.method = Method::kEkfac;
  options.damping = Damping{0.1, -1.0};
  EXPECT_THAT(ask({"fashion-mnist/test/1", {}, -1, {}}), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("damping")));
  // Raw input with a named label works, and the service stays usable after errors.
  options.damping.reset();
  const Dataset& test = testing::FashionTest(1);
  auto raw = ask({"", std::vector<float>(test.row(0), test.row(0) + 784), 3, {}});
  TDA_ASSERT_OK(raw);
  EXPECT_EQ((*raw)[0].label, 3);
  EXPECT_EQ((*raw)[0].query_id, "raw:0");
}

TEST(Attributor, GetSampleReturnsRecordAndPixels) {
  const Built& b = BuildOnce();
  auto a = Attributor::Open(b.projected_dir);
  TDA_ASSERT_OK(a);
  auto s = (*a)->GetSample("fashion-mnist/train/0");
  TDA_ASSERT_OK(s);
  EXPECT_EQ(s->record.label, 9);
  EXPECT_EQ(s->class_name, "Ankle boot");
  EXPECT_EQ(s->features.size(), 784u);
  EXPECT_EQ(s->features, std::vector<float>(testing::FashionTrain(1).row(0), testing::FashionTrain(1).row(0) + 784));
  EXPECT_THAT((*a)->GetSample("nope"), StatusIs(absl::StatusCode::kNotFound, HasSubstr("nope")));
}

TEST(Attributor, RefusesDamagedIndexFiles) {
  const Built& b = BuildOnce();
  testing::TempDir copy;
  std::filesystem::copy(b.projected_dir, copy.path(), std::filesystem::copy_options::recursive);
  // Flip one byte in the factors file.
  {
    std::fstream f(copy.file("factors.safetensors"), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-3, std::ios::end);
    f.put('\x5a');
  }
  EXPECT_THAT(Attributor::Open(copy.path()),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("factors.safetensors")));
  // Truncate a gradient shard.
  std::filesystem::copy(b.projected_dir + "/factors.safetensors", copy.file("factors.safetensors"),
                        std::filesystem::copy_options::overwrite_existing);
  std::filesystem::resize_file(copy.file("grads-00001.f32"), 100);
  EXPECT_THAT(Attributor::Open(copy.path()), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("grads-00001.f32")));
  EXPECT_THAT(Attributor::Open(copy.file("nothing-here")), StatusIs(absl::StatusCode::kNotFound, HasSubstr("no index")));
}

}  // namespace
}  // namespace tda
