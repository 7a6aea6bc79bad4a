// "Which training documents made the model say this?" end to end on a real byte-level GPT
// trained for real: a distinctive document planted several times in a fortunes corpus is the
// top proponent of a completion quoted from it, the parroting check finds the quote verbatim,
// per-token scores sum to the document score, and the planted copies have the highest
// self-influence of the corpus.
#include <filesystem>
#include <fstream>

#include "attribution/attributor.h"
#include "data/fortunes.h"
#include "index/index_builder.h"
#include "test_support.h"

namespace tda {
namespace {

TEST(GptAttribution, PlantedDocumentIsTheTopProponentAndIsQuotedVerbatim) {
  testing::TempDir dir;
  const std::string corpus = dir.file("fortunes");
  testing::WritePlantedCorpus(corpus);
  TextSplitOptions data_options;
  data_options.context_length = 96;
  auto train = LoadFortunes(corpus, Split::kTrain, data_options);
  TDA_ASSERT_OK(train);
  int planted_in_train = 0;
  for (const std::string& source : train->sources) planted_in_train += source == "planted";
  ASSERT_GE(planted_in_train, 3);

  const ModelConfig config = GptConfig(/*context_length=*/96, /*d_model=*/32, /*layers=*/1,
                                       /*heads=*/2, /*mlp_width=*/64, /*tied_head=*/false);
  TrainRecipe recipe;
  std::unique_ptr<Model> model = testing::TrainTinyGpt(config, *train, /*epochs=*/6, 0, &recipe);
  ASSERT_NE(model, nullptr);
  recipe.data_dir = corpus;
  TDA_ASSERT_OK(model->Save(dir.file("model"), recipe));
  IndexBuildOptions options;
  options.model_dir = dir.file("model");
  options.out_dir = dir.file("index");
  options.projection_dim_per_side = 16;
  TDA_ASSERT_OK(BuildIndex(*train, corpus, options));
  auto attributor = Attributor::Open(options.out_dir);
  TDA_ASSERT_OK(attributor);

  const std::string text = testing::kPlantedDocument;
  Query query;
  query.text = TextQuery{text.substr(0, 30), text.substr(30, 40)};
  AttributeOptions attribute;
  attribute.top_k = 5;
  attribute.token_scores = true;
  auto results = (*attributor)->Attribute({query}, attribute);
  TDA_ASSERT_OK(results);
  const QueryResult& result = (*results)[0];
  for (const Hit& hit : result.proponents) {
    std::printf("%-24s %+.4e verbatim %lld B  %s\n", hit.id.c_str(), hit.score,
                static_cast<long long>(hit.shared_span ? hit.shared_span->length : -1),
                hit.preview.substr(0, 50).c_str());
  }
  ASSERT_FALSE(result.proponents.empty());
  const Hit& top = result.proponents[0];
  EXPECT_EQ(top.source, "planted");
  ASSERT_TRUE(top.shared_span.has_value());
  EXPECT_EQ(top.shared_span->length, 40) << "the whole completion is quoted from it";
  EXPECT_EQ(top.shared_span->document_offset, 30);
  // Per-token scores: one per byte plus the end of the document, summing to the score.
  for (const std::vector<Hit>* hits : {&result.proponents, &result.opponents}) {
    for (const Hit& hit : *hits) {
      ASSERT_FALSE(hit.token_scores.empty()) << hit.id;
      EXPECT_LE(hit.token_scores.size(), hit.text.size() + 1);
      double sum = 0;
      for (float s : hit.token_scores) sum += s;
      EXPECT_NEAR(sum, hit.score, 1e-3 * std::abs(hit.score) + 1e-6) << hit.id;
    }
  }
  EXPECT_EQ(top.text, text);
  // Per-source totals add up to the sum of every row's score.
  double total = 0;
  for (const SourceTotal& s : result.source_totals) total += s.sum;
  attribute.return_scores = true;
  auto with_scores = (*attributor)->Attribute({query}, attribute);
  TDA_ASSERT_OK(with_scores);
  double all = 0;
  for (float s : (*with_scores)[0].scores) all += s;
  EXPECT_NEAR(total, all, 1e-3 * std::abs(all));

  // Self-influence: the unusual document seen once is in the top 1% of the corpus; the planted
  // copies are not (each copy is explained by the others: removing one changes little).
  auto self = (*attributor)->SelfInfluence(AttributeOptions{});
  TDA_ASSERT_OK(self);
  const GradientIndex& index = (*attributor)->index();
  auto rank_of = [&](const std::string& source) {
    int64_t best = index.rows();
    for (int64_t r = 0; r < index.rows(); ++r) {
      if (index.sample(r).source != source) continue;
      int64_t rank = 0;
      for (int64_t k = 0; k < index.rows(); ++k) rank += (*self)[k] > (*self)[r];
      best = std::min(best, rank);
    }
    return best;
  };
  const int64_t oddity = rank_of("oddity"), planted = rank_of("planted");
  std::printf("self-influence rank (0 = highest) of %lld documents: oddity %lld, best planted "
              "copy %lld\n",
              static_cast<long long>(index.rows()), static_cast<long long>(oddity),
              static_cast<long long>(planted));
  EXPECT_LT(oddity, std::max<int64_t>(1, index.rows() / 100));
}

}  // namespace
}  // namespace tda
