// Hugging Face tokenizers through the whole path, on a Llama trained for real with a SentencePiece
// model that Debian's spm_train fits on a fortunes JSONL corpus (one shared fixture): the token
// cache is keyed by the tokenizer (another tokenizer builds another entry, never reuses one), the
// model directory carries its tokenizer, a planted document is the top proponent of a completion
// quoted from it (per-token scores spread over bytes, summing to the score), query text is
// tokenized as python3-sentencepiece does, and fine-tuning (--init) starts from the init's
// weights and retrains identically.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "attribution/attributor.h"
#include "data/byte_tokenizer.h"
#include "data/fortunes.h"
#include "data/jsonl_corpus.h"
#include "data/token_cache.h"
#include "data/token_rows.h"
#include "data/tokenizer.h"
#include "data/tokenizer_files.h"
#include "index/index_builder.h"
#include "model/generate.h"
#include "model/model.h"
#include "model/recipe_data.h"
#include "model/trainer.h"
#include "test_support.h"

namespace tda {
namespace {

using ::testing::HasSubstr;
using testing::StatusIs;

constexpr char kPlanted[] =
    "The quantum hamster Zorblax juggles seventeen violet teapots every Thursday at dawn.\n";
constexpr int kCopies = 6;

void RunCommand(const std::string& command) {
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
}

// spm_train's model of `vocab` pieces on `lines`, as `dir`/tokenizer.model.
void TrainSentencePiece(const std::string& lines, int vocab, const std::string& dir) {
  std::filesystem::create_directories(dir);
  RunCommand("spm_train --input=" + lines + " --model_prefix=" + dir +
             "/spm --vocab_size=" + std::to_string(vocab) +
             " --character_coverage=1.0 --minloglevel=2 > " + dir + "/train.log 2>&1");
  std::filesystem::rename(dir + "/spm.model", dir + "/tokenizer.model");
}

// Built once: the corpus (fortunes of two categories and a planted document), two SentencePiece
// models, and a small Llama trained on the corpus with the first.
struct Fixture {
  testing::TempDir dir;
  JsonlOptions corpus;
  std::string spm, other_spm;  // tokenizer directories
  std::shared_ptr<const Tokenizer> tokenizer;
  ModelConfig config;
  TrainRecipe recipe;
  std::unique_ptr<Model> model;
  Dataset train;
};

// The corpus, tokenizers and training rows; with_model: and the llama trained on them.
Fixture& Shared(bool with_model = true) {
  static std::unique_ptr<Fixture> fixture = [] {
    auto f = std::make_unique<Fixture>();
    std::vector<TextDocument> docs;
    absl::StatusOr<std::vector<TextDocument>> read = ReadFortunes(kFortunesDefaultDir);
    EXPECT_TRUE(read.ok()) << read.status();
    for (TextDocument& doc : *read) {
      if (doc.source == "startrek" || doc.source == "law") docs.push_back(std::move(doc));
    }
    for (int i = 0; i < kCopies; ++i) {
      docs.push_back({"planted/" + std::to_string(i), "planted", kPlanted, 0});
    }
    EXPECT_GT(docs.size(), 200u);
    f->corpus.paths = {f->dir.file("fortunes.jsonl")};
    EXPECT_TRUE(WriteJsonl(docs, f->corpus.paths[0]).ok());
    {
      std::ofstream lines(f->dir.file("lines.txt"));
      for (const TextDocument& doc : docs) lines << doc.text << "\n";
    }
    f->spm = f->dir.file("spm");
    f->other_spm = f->dir.file("spm-other");
    TrainSentencePiece(f->dir.file("lines.txt"), 600, f->spm);
    TrainSentencePiece(f->dir.file("lines.txt"), 400, f->other_spm);
    absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = LoadTokenizer(f->spm);
    EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
    f->tokenizer = *std::move(tokenizer);

    f->config = LlamaConfig(f->tokenizer->vocabulary_size(), /*context_length=*/48,
                            /*d_model=*/32, /*layers=*/1, /*heads=*/2, /*kv_heads=*/1,
                            /*mlp_width=*/64, /*tied_head=*/false);
    TrainRecipe& recipe = f->recipe;
    recipe.dataset = "jsonl";
    recipe.data_dir = f->corpus.paths[0];
    recipe.corpus_hash = *JsonlCorpusHash(f->corpus.paths);
    recipe.chunk_stride = f->config.context_length;
    recipe.tokenizer_name = f->tokenizer->name();
    recipe.tokenizer_fingerprint = *TokenizerFingerprint(*FindTokenizerFiles(f->spm));
    recipe.tokenizer_path = f->spm;
    absl::StatusOr<Dataset> train = LoadRecipeData(f->config, recipe, Split::kTrain);
    EXPECT_TRUE(train.ok()) << train.status();
    f->train = *std::move(train);
    return f;
  }();
  // The model is trained on first use only: the cache and tokenization tests do not need it.
  if (!with_model || fixture->model != nullptr) return *fixture;
  Fixture* f = fixture.get();
  TrainRecipe& recipe = f->recipe;
  {
    TrainRecipe trained;
    f->model = testing::TrainTinyGpt(f->config, f->train, /*epochs=*/6, 0, &trained);
    // The training settings, with the data and tokenizer of this corpus.
    trained.dataset = recipe.dataset;
    trained.data_dir = recipe.data_dir;
    trained.corpus_hash = recipe.corpus_hash;
    trained.chunk_stride = recipe.chunk_stride;
    trained.tokenizer_name = recipe.tokenizer_name;
    trained.tokenizer_fingerprint = recipe.tokenizer_fingerprint;
    trained.tokenizer_path = recipe.tokenizer_path;
    recipe = trained;
  }
  return *fixture;
}

TEST(TokenizedCorpus, TokenCacheIsKeyedByTheTokenizer) {
  Fixture& f = Shared(/*with_model=*/false);
  testing::TempDir root;
  std::vector<std::string> log;
  TokenCacheOptions options;
  options.root = root.path();
  options.log = [&log](const std::string& line) { log.push_back(line); };
  absl::StatusOr<std::unique_ptr<TokenCache>> bytes = TokenCache::Open(f.corpus, options);
  TDA_ASSERT_OK(bytes);
  options.tokenizer = f.tokenizer;
  options.tokenizer_files = f.recipe.tokenizer_fingerprint;
  absl::StatusOr<std::unique_ptr<TokenCache>> pieces = TokenCache::Open(f.corpus, options);
  TDA_ASSERT_OK(pieces);
  EXPECT_TRUE((*pieces)->built()) << "a byte cache is never reused for another tokenizer";
  EXPECT_NE((*pieces)->dir(), (*bytes)->dir());
  EXPECT_LT((*pieces)->tokens(), (*bytes)->tokens() / 2);
  // The cached ids are the tokenizer's, document by document.
  std::vector<TextDocument> docs;
  TDA_ASSERT_OK(ReadJsonlDocuments(f.corpus, [&](TextDocument&& doc) {
    docs.push_back(std::move(doc));
    return absl::OkStatus();
  }));
  for (int64_t d : {int64_t{0}, (*pieces)->documents() - 1}) {
    absl::StatusOr<std::vector<int32_t>> expected = f.tokenizer->Encode(docs[d].text);
    TDA_ASSERT_OK(expected);
    std::vector<int32_t> cached(static_cast<size_t>((*pieces)->document_tokens(d)));
    (*pieces)->CopyTokens(d, cached.data());
    EXPECT_EQ(cached, *expected) << d;
  }
  // Reopened with the same tokenizer: reused. Another SentencePiece model: another entry.
  absl::StatusOr<std::unique_ptr<TokenCache>> again = TokenCache::Open(f.corpus, options);
  TDA_ASSERT_OK(again);
  EXPECT_FALSE((*again)->built());
  absl::StatusOr<std::unique_ptr<Tokenizer>> other = LoadTokenizer(f.other_spm);
  TDA_ASSERT_OK(other);
  options.tokenizer = std::move(*other);
  options.tokenizer_files = *TokenizerFingerprint(*FindTokenizerFiles(f.other_spm));
  absl::StatusOr<std::unique_ptr<TokenCache>> retokenized = TokenCache::Open(f.corpus, options);
  TDA_ASSERT_OK(retokenized);
  EXPECT_TRUE((*retokenized)->built());
  EXPECT_NE((*retokenized)->dir(), (*pieces)->dir());
  EXPECT_TRUE(log.empty()) << log[0];
}

TEST(TokenizedCorpus, QueryTextIsTokenizedAsPythonSentencePieceDoes) {
  Fixture& f = Shared(/*with_model=*/false);
  const std::string prompt = std::string(kPlanted).substr(0, 30);
  const std::string completion = "violet teapots, naïve café ☕ every Thursday";
  const char* source = std::getenv("TDA_SOURCE_DIR");
  ASSERT_NE(source, nullptr) << "TDA_SOURCE_DIR is not set (ctest sets it)";
  std::ofstream(f.dir.file("query.jsonl")) << nlohmann::json{{"text", prompt}}.dump() << "\n"
                                           << nlohmann::json{{"text", completion}}.dump() << "\n";
  RunCommand("/usr/bin/python3 " + std::string(source) +
             "/tests/python/sentencepiece_reference.py " + f.spm + "/tokenizer.model " +
             f.dir.file("query.jsonl") + " " + f.dir.file("reference.jsonl"));
  std::ifstream reference(f.dir.file("reference.jsonl"));
  std::string line;
  std::getline(reference, line);
  const auto prompt_ids = nlohmann::json::parse(line).at("ids").get<std::vector<int32_t>>();
  std::getline(reference, line);
  const auto completion_ids = nlohmann::json::parse(line).at("ids").get<std::vector<int32_t>>();

  std::vector<int32_t> tokens, targets;
  TDA_ASSERT_OK(MakeCompletionRow(*f.tokenizer, f.config.num_classes, prompt, completion, 256,
                                  &tokens, &targets));
  const size_t p = prompt_ids.size();
  ASSERT_EQ(tokens.size(), p + completion_ids.size());
  EXPECT_EQ(tokens[0], *f.tokenizer->bos_id());
  EXPECT_EQ(std::vector<int32_t>(tokens.begin() + 1, tokens.begin() + 1 + p), prompt_ids);
  EXPECT_EQ(std::vector<int32_t>(targets.begin() + p, targets.end()), completion_ids);
  EXPECT_EQ(std::vector<int32_t>(targets.begin(), targets.begin() + p),
            std::vector<int32_t>(p, kNoTarget));
  // An id beyond the model's vocabulary, and a model smaller than its tokenizer, are refused.
  EXPECT_THAT(MakeCompletionRow(*f.tokenizer, 100, prompt, completion, 256, &tokens, &targets),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("beyond the model's vocabulary of 100")));
  ModelConfig small = f.config;
  small.num_classes = 257;
  EXPECT_THAT(RecipeTokenizer(small, f.recipe),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("vocab_size 257, smaller than the 600 ids")));
}

TEST(TokenizedCorpus, PlantedDocumentIsTheTopProponentOfASentencePieceLlama) {
  Fixture& f = Shared();
  ASSERT_NE(f.model, nullptr);
  // Saved (the tokenizer files copied beside it), then indexed from the model directory alone.
  const std::string model_dir = f.dir.file("llama-model");
  TDA_ASSERT_OK(f.model->Save(model_dir, f.recipe));
  IndexBuildOptions build;
  build.model_dir = model_dir;
  build.out_dir = f.dir.file("llama-index");
  build.projection_dim_per_side = 16;
  TDA_ASSERT_OK(BuildIndex(f.train, f.recipe.data_dir, build));
  absl::StatusOr<std::unique_ptr<Attributor>> opened = Attributor::Open(build.out_dir);
  TDA_ASSERT_OK(opened);
  const std::unique_ptr<Attributor>& attributor = *opened;
  // The model directory carries its tokenizer, recorded in its recipe.
  EXPECT_EQ(testing::ReadText(model_dir + "/tokenizer.model"),
            testing::ReadText(f.spm + "/tokenizer.model"));
  TrainRecipe loaded;
  TDA_ASSERT_OK(LoadModel(model_dir, &loaded));
  EXPECT_EQ(loaded.tokenizer_fingerprint, f.recipe.tokenizer_fingerprint);
  EXPECT_EQ(loaded.tokenizer_path, model_dir);

  const std::string text = kPlanted;
  Query query;
  query.text = TextQuery{text.substr(0, 30), text.substr(30, 40)};
  AttributeOptions options;
  options.top_k = 5;
  options.token_scores = true;
  absl::StatusOr<std::vector<QueryResult>> results = attributor->Attribute({query}, options);
  TDA_ASSERT_OK(results);
  const QueryResult& result = (*results)[0];
  ASSERT_FALSE(result.proponents.empty());
  const Hit& top = result.proponents[0];
  EXPECT_EQ(top.source, "planted") << top.id << ": " << top.preview;
  ASSERT_TRUE(top.shared_span.has_value());
  EXPECT_EQ(top.shared_span->length, 40) << "the whole completion is quoted from it";
  // One score per byte of the decoded row (+ its end), summing to the hit's score.
  for (const Hit& hit : result.proponents) {
    ASSERT_FALSE(hit.token_scores.empty()) << hit.id;
    EXPECT_LE(hit.token_scores.size(), hit.text.size() + 1) << hit.id;
    EXPECT_GE(hit.token_scores.size(), hit.text.size()) << hit.id;
    double sum = 0;
    for (float s : hit.token_scores) sum += s;
    EXPECT_NEAR(sum, hit.score, 1e-3 * std::abs(hit.score) + 1e-6) << hit.id;
  }
  EXPECT_THAT(top.text, HasSubstr("Zorblax juggles seventeen violet teapots"));
}

// ScoresPerByte finds each token's bytes from a window of left context; on SentencePiece rows
// of real fortunes that gives exactly the spans of decoding every whole prefix.
TEST(TokenizedCorpus, PerByteScoresEqualWholePrefixDecoding) {
  Fixture& f = Shared(/*with_model=*/false);
  const DocumentMarkers markers = *DocumentMarkersOf(*f.tokenizer);
  const int64_t length = f.train.sequence_length;
  int64_t rows_checked = 0;
  for (int64_t row = 0; row < std::min<int64_t>(f.train.size(), 300); ++row) {
    const absl::Span<const int32_t> tokens(&f.train.tokens[row * length], length);
    const absl::Span<const int32_t> targets(&f.train.targets[row * length], length);
    std::vector<double> scores(static_cast<size_t>(length));
    for (int64_t r = 0; r < length; ++r) scores[r] = std::sin(0.7 * r + row) + 0.1 * r;
    absl::StatusOr<ScoredText> fast = ScoresPerByte(*f.tokenizer, markers, tokens, targets, scores);
    TDA_ASSERT_OK(fast);
    // The reference: token i's bytes end where decode(ids[0..i]) ends.
    std::vector<int32_t> ids;
    for (int64_t r = 0; r < length && targets[r] >= 0 && targets[r] != markers.end; ++r) {
      ids.push_back(targets[r]);
    }
    if (static_cast<int64_t>(ids.size()) < length) continue;  // rows that end early: covered above
    const std::string text = *f.tokenizer->Decode(ids);
    ASSERT_EQ(fast->text, text);
    std::vector<float> expected(text.size(), 0.0f);
    double pending = 0;
    size_t begin = 0;
    for (size_t i = 0; i < ids.size(); ++i) {
      size_t end = text.size();
      if (i + 1 < ids.size()) {
        end = std::clamp(f.tokenizer->Decode(absl::MakeConstSpan(ids.data(), i + 1))->size(), begin,
                         text.size());
      }
      pending += scores[i];
      if (end == begin) continue;
      for (size_t b = begin; b < end; ++b) expected[b] = static_cast<float>(pending / (end - begin));
      pending = 0;
      begin = end;
    }
    if (!expected.empty()) expected.back() += static_cast<float>(pending);
    ASSERT_EQ(fast->byte_scores, expected) << "row " << row << ": " << text;
    ++rows_checked;
  }
  EXPECT_GT(rows_checked, 100);
}

// The first greedy token is the one whose loss after the prompt is lowest, found by scoring a
// row for every token of the vocabulary through the model's loss (not its sampling loop).
TEST(TokenizedCorpus, GenerationSamplesTheModelsOwnTokens) {
  Fixture& f = Shared();
  ASSERT_NE(f.model, nullptr);
  const std::string prompt = std::string(kPlanted).substr(0, 30);
  GenerateOptions greedy;
  greedy.temperature = 0;
  greedy.max_tokens = 1;
  absl::StatusOr<std::string> first = Generate(*f.model, *f.tokenizer, prompt, greedy);
  TDA_ASSERT_OK(first);

  absl::StatusOr<std::vector<int32_t>> prompt_ids = f.tokenizer->Encode(prompt);
  TDA_ASSERT_OK(prompt_ids);
  const int64_t vocabulary = f.config.num_classes;
  const int64_t length = static_cast<int64_t>(prompt_ids->size()) + 1;
  std::vector<int32_t> tokens, targets;
  for (int32_t candidate = 0; candidate < vocabulary; ++candidate) {
    tokens.push_back(DocumentMarkersOf(*f.tokenizer)->begin);
    tokens.insert(tokens.end(), prompt_ids->begin(), prompt_ids->end());
    targets.insert(targets.end(), static_cast<size_t>(length - 1), kNoTarget);
    targets.push_back(candidate);
  }
  absl::StatusOr<BatchCapture> capture =
      f.model->Capture(Batch::Sequences(tokens.data(), targets.data(), vocabulary, length));
  TDA_ASSERT_OK(capture);
  const auto best = std::min_element(capture->losses.begin(), capture->losses.end());
  std::vector<int32_t> with_best = *prompt_ids;
  with_best.push_back(static_cast<int32_t>(best - capture->losses.begin()));
  EXPECT_EQ(*f.tokenizer->Decode(*prompt_ids) + *first, *f.tokenizer->Decode(with_best));

  // Longer completions: seeded, and a prefix of a longer one when greedy.
  greedy.max_tokens = 8;
  absl::StatusOr<std::string> eight = Generate(*f.model, *f.tokenizer, prompt, greedy);
  TDA_ASSERT_OK(eight);
  EXPECT_EQ(eight->rfind(*first, 0), 0u) << *eight;
  GenerateOptions sampled;
  sampled.max_tokens = 20;
  sampled.seed = 5;
  EXPECT_EQ(*Generate(*f.model, *f.tokenizer, prompt, sampled),
            *Generate(*f.model, *f.tokenizer, prompt, sampled));
}

TEST(TokenizedCorpus, FineTuningStartsFromTheInitAndRetrainsIdentically) {
  Fixture& f = Shared();
  ASSERT_NE(f.model, nullptr);
  const std::string init_dir = f.dir.file("init");
  TDA_ASSERT_OK(f.model->Save(init_dir, f.recipe));
  TrainRecipe tune = f.recipe;
  tune.init_model = init_dir;
  tune.init_fingerprint = f.model->Fingerprint();
  tune.epochs = 1;
  tune.train_size = 48;
  tune.batch_size = 48;  // one step: its batch is the whole training set
  std::vector<int64_t> first(48);
  for (int64_t r = 0; r < 48; ++r) first[r] = r;
  absl::StatusOr<Evaluation> before = Evaluate(*f.model, f.train.Select(first));
  TDA_ASSERT_OK(before);

  absl::StatusOr<std::unique_ptr<Model>> tuned = InitialModel(f.config, tune);
  TDA_ASSERT_OK(tuned);
  EXPECT_EQ((*tuned)->Fingerprint(), f.model->Fingerprint());
  absl::StatusOr<TrainReport> report = Train(**tuned, f.train, tune);
  TDA_ASSERT_OK(report);
  EXPECT_NEAR(report->first_step_loss, before->mean_loss, 1e-4 * before->mean_loss)
      << "step 0 is the init's loss on the batch";
  EXPECT_NE((*tuned)->Fingerprint(), f.model->Fingerprint());
  // The recipe, saved and read back, retrains to the same weights.
  TDA_ASSERT_OK((*tuned)->Save(f.dir.file("tuned"), tune));
  TrainRecipe saved;
  TDA_ASSERT_OK(LoadModel(f.dir.file("tuned"), &saved));
  EXPECT_EQ(saved.init_model, init_dir);
  absl::StatusOr<std::unique_ptr<Model>> again = InitialModel(f.config, saved);
  TDA_ASSERT_OK(again);
  TDA_ASSERT_OK(Train(**again, f.train, saved).status());
  EXPECT_EQ((*again)->Fingerprint(), (*tuned)->Fingerprint());
  // An init whose weights changed since is refused.
  saved.init_fingerprint = "0000000000000000";
  EXPECT_THAT(InitialModel(f.config, saved),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("restore the init")));
}

}  // namespace
}  // namespace tda
