// Self-influence from the stored rows equals each training sample's score against itself
// computed the independent way: a query by that sample's id (fresh gradient from the model,
// the same preconditioner, a scan of the index).
#include "attribution/attributor.h"

#include "data/fashion_mnist.h"
#include "index/index_builder.h"
#include "test_support.h"

namespace tda {
namespace {

TEST(SelfInfluence, EqualsEachSampleQueriedAgainstItself) {
  constexpr int64_t kTrain = 400;
  testing::TempDir dir;
  testing::TinyModelSpec spec;
  spec.train_size = kTrain;
  TrainRecipe recipe;
  auto model = testing::TrainTinyModel(spec, &recipe);
  TDA_ASSERT_OK(model->Save(dir.file("model"), recipe));
  for (int64_t projection : {0, 8}) {
    IndexBuildOptions options;
    options.model_dir = dir.file("model");
    options.out_dir = dir.file("index-" + std::to_string(projection));
    options.projection_dim_per_side = projection;
    options.rows_per_shard = 150;
    TDA_ASSERT_OK(BuildIndex(testing::FashionTrain(kTrain), kFashionMnistDefaultDir, options));
    auto attributor = Attributor::Open(options.out_dir);
    TDA_ASSERT_OK(attributor);
    for (Method method : {Method::kEkfac, Method::kGradientDot}) {
      AttributeOptions attribute;
      attribute.method = method;
      attribute.return_scores = true;
      auto self = (*attributor)->SelfInfluence(attribute);
      TDA_ASSERT_OK(self);
      ASSERT_EQ(self->size(), kTrain);
      std::vector<Query> queries;
      for (int64_t row : {0, 17, 150, 399}) {
        queries.push_back({(*attributor)->index().sample(row).id, {}, -1, {}});
      }
      auto results = (*attributor)->Attribute(queries, attribute);
      TDA_ASSERT_OK(results);
      for (size_t q = 0; q < queries.size(); ++q) {
        const int64_t row = (*attributor)->index().FindRow(queries[q].sample_id);
        const double expected = (*results)[q].scores[row];
        EXPECT_GT((*self)[row], 0) << "self-influence is a positive quadratic form";
        EXPECT_NEAR((*self)[row], expected, 1e-3 * std::abs(expected))
            << "row " << row << " projection " << projection << " " << MethodName(method);
      }
    }
  }
}

}  // namespace
}  // namespace tda
