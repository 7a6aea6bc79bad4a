// A JSONL corpus behind a real index: the fortunes exported to JSONL give a GPT index with the
// same rows, bit for bit, and the same answers as the fortunes read directly; the model records
// the corpus's content hash, and a corpus changed after training is refused unless allowed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "attribution/attributor.h"
#include "common/atomic_file.h"
#include "data/fortunes.h"
#include "data/jsonl_corpus.h"
#include "model/recipe_data.h"
#include "test_support.h"

namespace tda {
namespace {

using ::testing::HasSubstr;
using testing::StatusIs;

TEST(JsonlIndexTest, FortunesAsJsonlGiveTheSameIndexRowsAndAnswers) {
  testing::TempDir dir;
  const std::string corpus = dir.file("fortunes");
  std::filesystem::create_directories(corpus);
  for (const char* category : {"riddles", "startrek"}) {
    std::filesystem::copy_file(std::string(kFortunesDefaultDir) + "/" + category,
                               corpus + "/" + category);
  }
  absl::StatusOr<std::vector<TextDocument>> docs = ReadFortunes(corpus);
  TDA_ASSERT_OK(docs);
  const std::string jsonl = dir.file("fortunes.jsonl");
  TDA_ASSERT_OK(WriteJsonl(*docs, jsonl));

  // One model, saved twice: with the fortunes recipe and with the JSONL recipe.
  const ModelConfig config = GptConfig(/*context_length=*/96, /*d_model=*/32, /*layers=*/1,
                                       /*heads=*/2, /*mlp_width=*/64, /*tied_head=*/true);
  TrainRecipe fortunes_recipe;
  fortunes_recipe.dataset = "fortunes";
  fortunes_recipe.data_dir = corpus;
  absl::StatusOr<Dataset> train = LoadRecipeData(config, fortunes_recipe, Split::kTrain);
  TDA_ASSERT_OK(train);
  ASSERT_GT(train->size(), 300);
  std::unique_ptr<Model> model = testing::TrainTinyGpt(config, *train, /*epochs=*/2, 0, nullptr);
  ASSERT_NE(model, nullptr);
  TrainRecipe jsonl_recipe = fortunes_recipe;
  jsonl_recipe.dataset = "jsonl";
  jsonl_recipe.data_dir = jsonl;
  absl::StatusOr<std::string> hash = JsonlCorpusHash({jsonl});
  TDA_ASSERT_OK(hash);
  jsonl_recipe.corpus_hash = *hash;

  std::vector<std::unique_ptr<Attributor>> attributors;
  attributors.push_back(testing::IndexWithRecipe(*model, fortunes_recipe, dir.path(), "fortunes"));
  attributors.push_back(testing::IndexWithRecipe(*model, jsonl_recipe, dir.path(), "jsonl"));
  ASSERT_TRUE(attributors[0] != nullptr && attributors[1] != nullptr);
  testing::ExpectSameIndexFiles(dir.file("fortunes-index"), dir.file("jsonl-index"));
  Query query;
  query.text =
      TextQuery{"Q:\tWhat do you call a boomerang that doesn't come back?\nA:\t", "A stick.\n"};
  AttributeOptions options;
  options.top_k = 5;
  absl::StatusOr<std::vector<QueryResult>> a = attributors[0]->Attribute({query}, options);
  absl::StatusOr<std::vector<QueryResult>> b = attributors[1]->Attribute({query}, options);
  TDA_ASSERT_OK(a);
  TDA_ASSERT_OK(b);
  ASSERT_EQ((*a)[0].proponents.size(), (*b)[0].proponents.size());
  for (size_t i = 0; i < (*a)[0].proponents.size(); ++i) {
    const Hit& x = (*a)[0].proponents[i];
    const Hit& y = (*b)[0].proponents[i];
    std::printf("%-24s %+.6e | %-24s %+.6e verbatim %lld B\n", x.id.c_str(), x.score, y.id.c_str(),
                y.score, static_cast<long long>(y.shared_span ? y.shared_span->length : -1));
    EXPECT_EQ(x.id, y.id);
    EXPECT_EQ(x.score, y.score);
    ASSERT_TRUE(x.shared_span.has_value() && y.shared_span.has_value());
    EXPECT_EQ(x.shared_span->length, y.shared_span->length);
  }
  ASSERT_EQ((*a)[0].source_totals.size(), (*b)[0].source_totals.size());
  for (size_t i = 0; i < (*a)[0].source_totals.size(); ++i) {
    EXPECT_EQ((*a)[0].source_totals[i].source, (*b)[0].source_totals[i].source);
    EXPECT_EQ((*a)[0].source_totals[i].sum, (*b)[0].source_totals[i].sum);
  }

  // The corpus changes after training: its rows are not the model's any more.
  {
    std::ofstream more(jsonl, std::ios::app);
    more << "{\"id\": \"late/1\", \"text\": \"Added after the model was trained.\"}\n";
  }
  EXPECT_THAT(LoadRecipeData(config, jsonl_recipe, Split::kTrain).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("has changed since the model was trained")));
  absl::StatusOr<Dataset> allowed = LoadRecipeData(config, jsonl_recipe, Split::kTrain, "", nullptr,
                                                   /*allow_changed_corpus=*/true);
  TDA_ASSERT_OK(allowed);
  EXPECT_EQ(allowed->size(), train->size() + (IsHeldOut("late/1", 0, 0.05) ? 0 : 1));
}

}  // namespace
}  // namespace tda
