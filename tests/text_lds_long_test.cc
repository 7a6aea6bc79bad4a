// LDS for a language model (issue: faithfulness beyond the anchors): the dattri protocol of
// ops/lds_experiment.h on a gpt trained for real on a subset of the fortunes corpus, with the
// summed log-loss of held-out fortunes as the measurement. 50 retrainings at alpha 0.5; EK-FAC
// against gradient-dot. Labelled `long` (minutes): `scripts/test --long`.
#include <gtest/gtest.h>

#include <cstdio>

#include "data/fortunes.h"
#include "model/model.h"
#include "model/model_config.h"
#include "ops/lds_experiment.h"
#include "test_support.h"

namespace tda {
namespace {

TEST(TextLds, EkfacPredictsRetrainedHeldOutLossesBetterThanGradientDot) {
  InitCompute();
  constexpr int64_t kContext = 64;
  constexpr int64_t kDocuments = 512;
  const Dataset& train = testing::FortunesTrain(kDocuments, kContext);
  TextSplitOptions split;
  split.context_length = kContext;
  split.limit = 48;
  absl::StatusOr<Dataset> queries = LoadFortunes(kFortunesDefaultDir, Split::kTest, split);
  ASSERT_TRUE(queries.ok()) << queries.status();
  LdsExperiment experiment;
  experiment.config = GptConfig(kContext, /*d_model=*/32, /*layers=*/1, /*heads=*/2,
                                /*mlp_width=*/64, /*tied_head=*/false);
  TrainRecipe recipe;
  testing::TrainTinyGpt(experiment.config, train, /*epochs=*/6, 0, &recipe);
  experiment.recipe = recipe;
  experiment.lds.subsets = 50;
  experiment.methods = {Method::kEkfac, Method::kGradientDot};
  absl::StatusOr<LdsExperimentResult> result = RunLdsExperiment(experiment, train, *queries);
  ASSERT_TRUE(result.ok()) << result.status();
  for (const LdsMethodResult& m : result->methods) {
    std::printf("%s LDS %.3f (%.1f s)\n", MethodName(m.scores.method), m.lds.mean,
                m.scores.seconds);
  }
  std::printf("parameters %lld, retraining %.1f s\n", static_cast<long long>(result->parameters),
              result->retrain_seconds);
  EXPECT_GT(result->methods[0].lds.mean, result->methods[1].lds.mean);
}

}  // namespace
}  // namespace tda
