// LDS for a language model: the dattri protocol of ops/lds_experiment.h on a gpt trained for
// real on 512 fortunes, with the summed log-loss of 48 held-out fortunes as the measurement. 50
// retrainings at alpha 0.5; EK-FAC against gradient-dot; the mean per-token loss gives the same
// LDS. Labelled `long` (minutes): `scripts/test --long`.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

#include "ablation/eval_protocol.h"
#include "data/fortunes.h"
#include "model/model.h"
#include "model/model_config.h"
#include "ops/lds_experiment.h"
#include "test_support.h"

namespace tda {
namespace {

constexpr int64_t kContext = 64;
constexpr int64_t kDocuments = 512;

const Dataset& HeldOutFortunes() {
  static const Dataset* queries = [] {
    TextSplitOptions split;
    split.context_length = kContext;
    split.limit = 48;
    absl::StatusOr<Dataset> loaded = LoadFortunes(kFortunesDefaultDir, Split::kTest, split);
    if (!loaded.ok()) {
      ADD_FAILURE() << loaded.status();
      std::abort();
    }
    return new Dataset(std::move(*loaded));
  }();
  return *queries;
}

// The gpt of every case and its recipe: those of `tda eval lds --model gpt` (d_model 32, one
// layer; 16,640 parameters).
LdsExperiment GptExperiment(int64_t subsets) {
  InitCompute();
  absl::StatusOr<EvalSetup> preset = ProtocolSetup("tda", "lds", "gpt");
  EXPECT_TRUE(preset.ok()) << preset.status();
  EXPECT_EQ(preset->config.context_length, kContext);
  EXPECT_EQ(preset->train_size, kDocuments);
  LdsExperiment experiment;
  experiment.config = preset->config;
  experiment.recipe = preset->recipe;
  experiment.lds.subsets = subsets;
  return experiment;
}

TEST(TextLds, EkfacPredictsRetrainedHeldOutLossesBetterThanGradientDot) {
  const Dataset& train = testing::FortunesTrain(kDocuments, kContext);
  LdsExperiment experiment = GptExperiment(/*subsets=*/50);
  experiment.methods = {Method::kEkfac, Method::kGradientDot};
  absl::StatusOr<LdsExperimentResult> result =
      RunLdsExperiment(experiment, train, HeldOutFortunes());
  ASSERT_TRUE(result.ok()) << result.status();
  for (const LdsMethodResult& m : result->methods) {
    std::printf("%s LDS %.3f (%.1f s)\n", MethodName(m.scores.method), m.lds.mean,
                m.scores.seconds);
  }
  std::printf("parameters %lld, retraining %.1f s\n", static_cast<long long>(result->parameters),
              result->retrain_seconds);
  EXPECT_GT(result->methods[0].lds.mean, result->methods[1].lds.mean);
  EXPECT_GT(result->methods[0].lds.mean, 0.2);
}

TEST(TextLds, MeanTokenLossGivesTheSameLdsAsTheSummedLoss) {
  const Dataset& train = testing::FortunesTrain(kDocuments, kContext);
  LdsExperiment experiment = GptExperiment(/*subsets=*/8);
  experiment.methods = {Method::kEkfac};
  experiment.damping = 1e-3;  // the same for both (the default is estimated per run)
  absl::StatusOr<LdsExperimentResult> summed =
      RunLdsExperiment(experiment, train, HeldOutFortunes());
  ASSERT_TRUE(summed.ok()) << summed.status();
  experiment.lds.measurement = Measurement::kMeanLoss;
  absl::StatusOr<LdsExperimentResult> mean = RunLdsExperiment(experiment, train, HeldOutFortunes());
  ASSERT_TRUE(mean.ok()) << mean.status();
  const Eigen::VectorXd& a = summed->methods[0].lds.per_query;
  const Eigen::VectorXd& b = mean->methods[0].lds.per_query;
  ASSERT_EQ(a.size(), b.size());
  for (int64_t q = 0; q < a.size(); ++q) EXPECT_NEAR(a(q), b(q), 1e-9) << "query " << q;
  // The scores themselves differ: query q's are divided by its target tokens.
  EXPECT_GT((summed->methods[0].scores.scores - mean->methods[0].scores.scores).norm(), 0);
}

}  // namespace
}  // namespace tda
