// The fused pass of an index build (index/fused_gradient_pass.h: one forward per batch for the
// eigenvalue correction and the rows) against the three-pass build, on a small GPT trained on
// real fortunes: the same EK-FAC factors and the same rows, for the true Fisher (two backward
// passes from one forward), on every row and on windows spread over the rows, and the empirical
// Fisher (one backward) on spread windows (rows the fit does not read are captured alone).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "curvature/ekfac.h"
#include "curvature/factor_fitting.h"
#include "data/dataset_rows.h"
#include "index/gradient_index.h"
#include "index/index_builder.h"
#include "model/model.h"
#include "test_support.h"

namespace tda {
namespace {

struct Built {
  KroneckerFactors factors;
  std::vector<std::vector<float>> rows;
  std::set<std::string> stages;  // progress stages the build reported
};

Built BuildWith(const Dataset& train, const std::string& model_dir, const std::string& out,
                const FitOptions& fit, bool fused) {
  IndexBuildOptions options;
  options.model_dir = model_dir;
  options.out_dir = out;
  options.projection_dim_per_side = 8;
  options.batch_size = 4;  // windows of 32 documents: several windows and a partial one
  options.fit = fit;
  options.fused_pass = fused;
  Built built;
  const ProgressFn progress = [&](std::string_view stage, int64_t, int64_t, std::string_view) {
    built.stages.insert(std::string(stage));
  };
  const absl::Status status = BuildIndex(train, "", options, progress);
  EXPECT_TRUE(status.ok()) << status;
  absl::StatusOr<KroneckerFactors> factors = LoadFactors(out + "/factors.safetensors");
  EXPECT_TRUE(factors.ok()) << factors.status();
  if (factors.ok()) built.factors = *std::move(factors);
  absl::StatusOr<std::unique_ptr<GradientIndex>> index = GradientIndex::Open(out);
  EXPECT_TRUE(index.ok()) << index.status();
  if (!index.ok()) return built;
  for (int64_t r = 0; r < (*index)->rows(); ++r) {
    std::vector<float> row(static_cast<size_t>((*index)->dim()));
    EXPECT_TRUE((*index)->CopyRow(r, row.data()));
    built.rows.push_back(std::move(row));
  }
  return built;
}

// max |x - y| / max |y|: 0 when equal.
template <typename A, typename B>
double RelativeDifference(const A& x, const B& y) {
  const double scale = std::max(1e-30, static_cast<double>(y.cwiseAbs().maxCoeff()));
  return static_cast<double>((x - y).cwiseAbs().maxCoeff()) / scale;
}

// Float rounding of the captures (float32) in the factors (float64): 1e-6 of the largest entry.
constexpr double kTolerance = 1e-6;

void ExpectSameBuild(const Built& fused, const Built& three) {
  EXPECT_EQ(fused.stages.count("eigen-correction"), 0u) << "the fused build took a third pass";
  EXPECT_EQ(three.stages.count("eigen-correction"), 1u);
  ASSERT_EQ(fused.factors.layers.size(), three.factors.layers.size());
  EXPECT_EQ(fused.factors.examples, three.factors.examples);
  EXPECT_EQ(fused.factors.fisher, three.factors.fisher);
  double worst = 0;
  for (size_t l = 0; l < three.factors.layers.size(); ++l) {
    const LayerFactors& f = fused.factors.layers[l];
    const LayerFactors& t = three.factors.layers[l];
    for (double d :
         {RelativeDifference(f.a_cov, t.a_cov), RelativeDifference(f.s_cov, t.s_cov),
          RelativeDifference(f.lambda_a, t.lambda_a), RelativeDifference(f.lambda_s, t.lambda_s),
          RelativeDifference(f.q_a, t.q_a), RelativeDifference(f.q_s, t.q_s),
          RelativeDifference(f.corrected, t.corrected)}) {
      EXPECT_LE(d, kTolerance) << "layer " << three.factors.layout.layers[l].name;
      worst = std::max(worst, d);
    }
  }
  ASSERT_EQ(fused.rows.size(), three.rows.size());
  for (size_t r = 0; r < three.rows.size(); ++r) {
    const Eigen::Map<const Eigen::VectorXf> f(fused.rows[r].data(), fused.rows[r].size());
    const Eigen::Map<const Eigen::VectorXf> t(three.rows[r].data(), three.rows[r].size());
    const double d = RelativeDifference(f, t);
    EXPECT_LE(d, kTolerance) << "row " << r;
    worst = std::max(worst, d);
  }
  std::printf("largest relative difference, factors and rows: %.3g\n", worst);
}

TEST(FusedBuild, GivesTheFactorsAndRowsOfTheThreePassBuild) {
  const Dataset& train = testing::FortunesTrain(136, 64);  // 5 windows: 4 x 32 and 8
  const ModelConfig config = GptConfig(/*context_length=*/64, /*d_model=*/16, /*layers=*/1,
                                       /*heads=*/2, /*mlp_width=*/32, /*tied_head=*/false);
  TrainRecipe recipe;
  std::unique_ptr<Model> model = testing::TrainTinyGpt(config, train, /*epochs=*/2, 0, &recipe);
  ASSERT_NE(model, nullptr);
  testing::TempDir dir;
  TDA_ASSERT_OK(model->Save(dir.file("model"), recipe));

  FitOptions true_fisher;  // every row, labels sampled from the model
  true_fisher.batch_size = 4;
  true_fisher.seed = 7;
  FitOptions empirical;  // two windows of the five, spread: 0 and 2
  empirical.fisher = FisherKind::kEmpirical;
  empirical.batch_size = 4;
  empirical.max_examples = 64;
  FitOptions true_part = true_fisher;  // three windows: 0, 1 and 3, labels seeded by data row
  true_part.max_examples = 96;
  const DatasetRows rows(train);
  EXPECT_EQ(FitWindowStarts(rows, true_fisher), (std::vector<int64_t>{0, 32, 64, 96, 128}));
  EXPECT_EQ(FitWindowStarts(rows, empirical), (std::vector<int64_t>{0, 64}));
  EXPECT_EQ(FitWindowStarts(rows, true_part), (std::vector<int64_t>{0, 32, 96}));
  for (const FitOptions& fit : {true_fisher, empirical, true_part}) {
    SCOPED_TRACE(absl::StrCat(fit.fisher == FisherKind::kTrue ? "true" : "empirical", " Fisher, ",
                              fit.max_examples, " examples"));
    const Built fused = BuildWith(train, dir.file("model"), dir.file("fused"), fit, true);
    const Built three = BuildWith(train, dir.file("model"), dir.file("three"), fit, false);
    ASSERT_EQ(three.rows.size(), train.size());
    ExpectSameBuild(fused, three);
  }
}

}  // namespace
}  // namespace tda
