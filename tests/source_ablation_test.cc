// Forgetting a data source, on a real byte-level GPT trained for real on four categories of the
// fortunes corpus: removing one category and retraining raises the held-out loss of that
// category more than of the others, and the predicted source x task map puts each source's
// largest effect on its own task.
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>

#include "ablation/removal_ablation.h"
#include "ablation/source_task_matrix.h"
#include "data/fortunes.h"
#include "test_support.h"

namespace tda {
namespace {

constexpr int64_t kContext = 48;
const std::vector<std::string> kSources = {"definitions", "knghtbrd", "startrek", "zippy"};

// Up to `per_source` documents of each of kSources from `split`.
Dataset Categories(Split split, int64_t per_source) {
  TextSplitOptions options;
  options.context_length = kContext;
  absl::StatusOr<Dataset> all = LoadFortunes(kFortunesDefaultDir, split, options);
  EXPECT_TRUE(all.ok()) << all.status();
  std::map<std::string, int64_t> taken;
  std::vector<int64_t> rows;
  for (int64_t i = 0; i < all->size(); ++i) {
    const std::string& source = all->sources[i];
    if (std::find(kSources.begin(), kSources.end(), source) == kSources.end()) continue;
    if (taken[source]++ < per_source) rows.push_back(i);
  }
  return all->Select(rows);
}

TEST(SourceAblation, ForgettingACategoryHurtsThatCategoryMost) {
  const Dataset train = Categories(Split::kTrain, 90);
  const Dataset held_out = Categories(Split::kTest, 12);
  std::vector<AblationTask> tasks;
  for (const std::string& source : kSources) {
    std::vector<int64_t> rows;
    for (int64_t i = 0; i < held_out.size(); ++i) {
      if (held_out.sources[i] == source) rows.push_back(i);
    }
    ASSERT_GE(rows.size(), 3u) << source;
    tasks.push_back({"held-out " + source, held_out.Select(rows)});
  }
  const ModelConfig config = GptConfig(kContext, /*d_model=*/32, /*layers=*/1, /*heads=*/2,
                                       /*mlp_width=*/64, /*tied_head=*/false);
  TrainRecipe recipe;
  std::unique_ptr<Model> model = testing::TrainTinyGpt(config, train, /*epochs=*/6, 0, &recipe);
  ASSERT_NE(model, nullptr);
  const testing::InMemoryEkfacScorer scorer(*model, train);

  auto matrix = ComputeSourceTaskMatrix(train, tasks, scorer.AsFunction());
  TDA_ASSERT_OK(matrix);
  std::printf("%s", SourceTaskMatrixCsv(*matrix).c_str());
  for (const SourcePair& pair : matrix->pairs) {
    std::printf("%s ~ %s: r = %.2f (%s)\n", pair.a.c_str(), pair.b.c_str(), pair.pearson,
                pair.relation.c_str());
  }
  // Each source's largest predicted effect is on its own held-out task.
  int own_task_first = 0;
  for (size_t s = 0; s < matrix->sources.size(); ++s) {
    const size_t own = static_cast<size_t>(
        std::find(kSources.begin(), kSources.end(), matrix->sources[s]) - kSources.begin());
    Eigen::Index best;
    matrix->effect.row(static_cast<Eigen::Index>(s)).maxCoeff(&best);
    own_task_first += static_cast<size_t>(best) == own;
  }
  EXPECT_GE(own_task_first, 3) << "of 4 sources";
  const std::string svg =
      SourceTaskMatrixSvg(*matrix, "fortunes, 4 categories: predicted loss change if removed");
  if (const char* path = std::getenv("TDA_EXAMPLE_SVG")) {  // docs/images/source_task_fortunes.svg
    std::ofstream(path) << svg;
  }
  EXPECT_NE(svg.find("<svg"), std::string::npos);
  EXPECT_NE(svg.find("startrek"), std::string::npos);

  // Forget zippy (all its documents) for real: retrain without it.
  std::vector<int64_t> removed;
  for (int64_t i = 0; i < train.size(); ++i) {
    if (train.sources[i] == "zippy") removed.push_back(i);
  }
  RemovalAblationOptions options;
  auto result = RunRemovalAblation(*model, recipe, train, removed, tasks, scorer.AsFunction(),
                                   options);
  TDA_ASSERT_OK(result);
  size_t forgotten = 0;
  for (size_t t = 0; t < result->tasks.size(); ++t) {
    const TaskEffect& task = result->tasks[t];
    if (task.name == "held-out zippy") forgotten = t;
    std::printf("remove zippy (%zu docs) -> %-18s predicted %+.3f newton %+.3f retrained "
                "%+.3f\n",
                removed.size(), task.name.c_str(), task.mean_predicted, *task.mean_newton,
                *task.mean_retrained);
  }
  for (size_t t = 0; t < result->tasks.size(); ++t) {
    if (t == forgotten) continue;
    EXPECT_GT(*result->tasks[forgotten].mean_retrained, *result->tasks[t].mean_retrained)
        << result->tasks[t].name;
    EXPECT_GT(result->tasks[forgotten].mean_predicted, result->tasks[t].mean_predicted)
        << result->tasks[t].name;
  }
  EXPECT_GT(*result->tasks[forgotten].mean_retrained, 0);
}

}  // namespace
}  // namespace tda
