// The token cache (data/token_cache.h) and the rows it serves (data/cached_text_rows.h), on the
// real fortunes exported to JSONL: rows bit-identical to DocumentsToDataset (stride 0) and to rows
// built directly with chunking.h (stride > 0), plain and instruction data, both splits; the cache
// is reused, keyed by the corpus and the tokenizer, rebuilt when damaged, and never removes what it
// did not write; a jsonl index built through the streaming path has the same files as one built
// from the in-memory Dataset.
#include "data/token_cache.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "data/byte_tokenizer.h"
#include "data/cached_text_rows.h"
#include "data/chunking.h"
#include "data/dataset_rows.h"
#include "data/fortunes.h"
#include "data/jsonl_corpus.h"
#include "data/text_document.h"
#include "model/recipe_data.h"
#include "ops/build_model_index.h"
#include "test_support.h"

namespace tda {
namespace {

using ::testing::HasSubstr;
using testing::StatusIs;
using testing::TempDir;

// The whole fortunes corpus as JSONL, and as instruction pairs (first line = prompt), written once
// per process.
struct FortunesJsonl {
  TempDir dir;
  std::vector<TextDocument> docs;
  std::vector<TextDocument> pairs;
  std::string plain, instruction;

  FortunesJsonl() {
    absl::StatusOr<std::vector<TextDocument>> read = ReadFortunes(kFortunesDefaultDir);
    EXPECT_TRUE(read.ok()) << read.status();
    docs = *std::move(read);
    plain = dir.file("fortunes.jsonl");
    EXPECT_TRUE(WriteJsonl(docs, plain).ok());
    for (const TextDocument& doc : docs) {
      const size_t line = doc.text.find('\n');
      if (line == std::string::npos || line + 1 >= doc.text.size()) continue;
      TextDocument pair = doc;
      pair.prompt_bytes = static_cast<int64_t>(line + 1);
      pairs.push_back(std::move(pair));
    }
    instruction = dir.file("pairs.jsonl");
    EXPECT_TRUE(WriteJsonl(pairs, instruction).ok());
  }
};

const FortunesJsonl& Corpus() {
  static const FortunesJsonl* corpus = new FortunesJsonl();
  return *corpus;
}

JsonlOptions PlainOptions() {
  JsonlOptions options;
  options.paths = {Corpus().plain};
  return options;
}

JsonlOptions PairOptions() {
  JsonlOptions options;
  options.paths = {Corpus().instruction};
  options.prompt_field = "prompt";
  options.completion_field = "completion";
  return options;
}

std::shared_ptr<const TokenCache> OpenCache(const JsonlOptions& corpus, const std::string& root,
                                            std::vector<std::string>* log = nullptr) {
  TokenCacheOptions options;
  options.root = root;
  options.log = [log](const std::string& line) {
    if (log != nullptr) log->push_back(line);
  };
  absl::StatusOr<std::unique_ptr<TokenCache>> cache = TokenCache::Open(corpus, options);
  EXPECT_TRUE(cache.ok()) << cache.status();
  return cache.ok() ? std::shared_ptr<const TokenCache>(*std::move(cache)) : nullptr;
}

void ExpectSameRows(const Dataset& expected, const Dataset& got) {
  EXPECT_EQ(expected.name, got.name);
  EXPECT_EQ(expected.sequence_length, got.sequence_length);
  ASSERT_EQ(expected.size(), got.size());
  EXPECT_TRUE(expected.tokens == got.tokens);
  EXPECT_TRUE(expected.targets == got.targets);
  EXPECT_EQ(expected.ids, got.ids);
  EXPECT_EQ(expected.sources, got.sources);
  EXPECT_TRUE(expected.previews == got.previews);
}

// Truncation (stride 0, context 128) and chunking (context 64, windows 48 apart).
TEST(TokenCacheTest, RowsEqualTheInMemoryReadersTruncatedAndChunked) {
  TempDir root;
  for (const bool pairs : {false, true}) {
    const JsonlOptions corpus = pairs ? PairOptions() : PlainOptions();
    std::shared_ptr<const TokenCache> cache = OpenCache(corpus, root.path());
    ASSERT_NE(cache, nullptr);
    EXPECT_EQ(cache->documents(),
              static_cast<int64_t>(pairs ? Corpus().pairs.size() : Corpus().docs.size()));
    for (const int64_t stride : {int64_t{0}, int64_t{48}}) {
      for (const Split split : {Split::kTrain, Split::kTest}) {
        for (const int64_t limit : {int64_t{0}, int64_t{500}}) {
          SCOPED_TRACE(absl::StrCat("pairs ", pairs, " stride ", stride, " split ",
                                    static_cast<int>(split), " limit ", limit));
          TextSplitOptions options;
          options.context_length = stride == 0 ? 128 : 64;
          options.chunk_stride = stride;
          options.limit = limit;
          int64_t truncated = -1;
          absl::StatusOr<Dataset> expected = LoadJsonl(corpus, split, options, &truncated);
          TDA_ASSERT_OK(expected);
          absl::StatusOr<std::unique_ptr<CachedTextRows>> rows =
              CachedTextRows::Open(cache, JsonlCorpusName(corpus), split, options);
          TDA_ASSERT_OK(rows);
          EXPECT_EQ((*rows)->truncated(), truncated);
          if (stride == 0) {
            EXPECT_GT(truncated, 0);
          }
          if (stride > 0 && limit == 0) {
            EXPECT_GT((*rows)->size(), cache->documents() / 20);  // many chunks
            std::printf("split %d: %lld rows, row table %lld bytes\n", static_cast<int>(split),
                        static_cast<long long>((*rows)->size()),
                        static_cast<long long>((*rows)->row_table_bytes()));
          }
          ExpectSameRows(*expected, MaterializeRows(**rows));
          for (int64_t i = 0; i < (*rows)->size(); i += 97) {
            EXPECT_EQ((*rows)->used_positions(i), expected->used_positions(i)) << i;
          }
        }
      }
    }
  }
}

TEST(TokenCacheTest, ReusedUntilTheCorpusOrTheTokenizerChanges) {
  TempDir root;
  std::shared_ptr<const TokenCache> first = OpenCache(PlainOptions(), root.path());
  ASSERT_NE(first, nullptr);
  EXPECT_TRUE(first->built());
  const auto written = std::filesystem::last_write_time(first->dir() + "/tokens.bin");
  std::shared_ptr<const TokenCache> again = OpenCache(PlainOptions(), root.path());
  ASSERT_NE(again, nullptr);
  EXPECT_FALSE(again->built());  // not tokenized again
  EXPECT_EQ(again->dir(), first->dir());
  EXPECT_EQ(std::filesystem::last_write_time(again->dir() + "/tokens.bin"), written);

  // A changed corpus file: a new entry; the old one is left as it was.
  const std::string changed = root.file("changed.jsonl");
  std::filesystem::copy_file(Corpus().plain, changed);
  {
    std::ofstream out(changed, std::ios::app);
    out << R"({"id": "extra/1", "source": "extra", "text": "One more fortune."})"
        << "\n";
  }
  JsonlOptions changed_corpus = PlainOptions();
  std::filesystem::rename(changed, root.file("fortunes.jsonl"));
  changed_corpus.paths = {root.file("fortunes.jsonl")};  // the same file name, other content
  std::shared_ptr<const TokenCache> other = OpenCache(changed_corpus, root.path());
  ASSERT_NE(other, nullptr);
  EXPECT_TRUE(other->built());
  EXPECT_NE(other->dir(), first->dir());
  EXPECT_EQ(other->documents(), first->documents() + 1);
  EXPECT_EQ(other->id(other->documents() - 1), "extra/1");
  EXPECT_TRUE(std::filesystem::exists(first->dir() + "/manifest.json"));

  // Other tokenizer files (their fingerprint is part of the key): a new entry
  // (tokenized_corpus_test.cc: another tokenizer).
  TokenCacheOptions options;
  options.root = root.path();
  options.tokenizer_files = "0123456789abcdef";
  absl::StatusOr<std::unique_ptr<TokenCache>> retokenized =
      TokenCache::Open(PlainOptions(), options);
  TDA_ASSERT_OK(retokenized);
  EXPECT_TRUE((*retokenized)->built());
  EXPECT_NE((*retokenized)->dir(), first->dir());
}

TEST(TokenCacheTest, DamagedCacheIsDetectedAndRebuilt) {
  TempDir root;
  std::string dir;
  int64_t tokens = 0;
  {
    std::shared_ptr<const TokenCache> cache = OpenCache(PlainOptions(), root.path());
    ASSERT_NE(cache, nullptr);
    dir = cache->dir();
    tokens = cache->tokens();
  }
  {
    std::fstream file(dir + "/tokens.bin", std::ios::in | std::ios::out | std::ios::binary);
    file.seekg(1000);
    char byte = 0;
    file.read(&byte, 1);
    file.seekp(1000);
    byte = static_cast<char>(byte ^ 0x20);
    file.write(&byte, 1);
  }
  std::vector<std::string> log;
  std::shared_ptr<const TokenCache> rebuilt = OpenCache(PlainOptions(), root.path(), &log);
  ASSERT_NE(rebuilt, nullptr);
  EXPECT_TRUE(rebuilt->built());
  ASSERT_EQ(log.size(), 1u);
  EXPECT_THAT(log[0], HasSubstr("tokens.bin is damaged"));
  EXPECT_THAT(log[0], HasSubstr("rebuilding"));
  EXPECT_EQ(rebuilt->tokens(), tokens);
  EXPECT_EQ(rebuilt->Text(0), Corpus().docs[0].text);

  // A truncated file too.
  std::filesystem::resize_file(dir + "/offsets.bin", 16);
  log.clear();
  rebuilt = OpenCache(PlainOptions(), root.path(), &log);
  ASSERT_NE(rebuilt, nullptr);
  EXPECT_TRUE(rebuilt->built());
  ASSERT_EQ(log.size(), 1u);
  EXPECT_THAT(log[0], HasSubstr("offsets.bin has 16 bytes"));

  // A manifest whose fields have the wrong types (still saying it is a token cache's).
  std::string manifest = testing::ReadText(dir + "/manifest.json");
  const size_t at = manifest.find("\"documents\": ");
  ASSERT_NE(at, std::string::npos);
  manifest.insert(at + 13, "\"many\", \"was\": ");
  testing::WriteText(dir + "/manifest.json", manifest);
  log.clear();
  rebuilt = OpenCache(PlainOptions(), root.path(), &log);
  ASSERT_NE(rebuilt, nullptr);
  EXPECT_TRUE(rebuilt->built());
  ASSERT_EQ(log.size(), 1u);
  EXPECT_THAT(log[0], HasSubstr("no count 'documents'"));
}

TEST(TokenCacheTest, NeverRemovesWhatItDidNotWrite) {
  TempDir elsewhere, root;
  std::shared_ptr<const TokenCache> cache = OpenCache(PlainOptions(), elsewhere.path());
  ASSERT_NE(cache, nullptr);
  // Someone's directory where the entry would go.
  const std::string theirs = root.file(std::filesystem::path(cache->dir()).filename().string());
  std::filesystem::create_directories(theirs);
  testing::WriteText(theirs + "/notes.txt", "mine");
  TokenCacheOptions options;
  options.root = root.path();
  EXPECT_THAT(
      TokenCache::Open(PlainOptions(), options).status(),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("is not a tda token cache")));
  EXPECT_EQ(testing::ReadText(theirs + "/notes.txt"), "mine");
}

TEST(TokenCacheTest, StreamedJsonlIndexEqualsTheInMemoryOne) {
  TempDir dir;
  const std::string corpus = dir.file("fortunes");
  std::filesystem::create_directories(corpus);
  std::filesystem::copy_file(std::string(kFortunesDefaultDir) + "/riddles", corpus + "/riddles");
  absl::StatusOr<std::vector<TextDocument>> docs = ReadFortunes(corpus);
  TDA_ASSERT_OK(docs);
  const std::string jsonl = dir.file("riddles.jsonl");
  TDA_ASSERT_OK(WriteJsonl(*docs, jsonl));
  JsonlOptions jsonl_options;
  jsonl_options.paths = {jsonl};

  const ModelConfig config = GptConfig(/*context_length=*/64, /*d_model=*/32, /*layers=*/1,
                                       /*heads=*/2, /*mlp_width=*/64, /*tied_head=*/true);
  TextSplitOptions split;
  split.context_length = config.context_length;
  absl::StatusOr<Dataset> train = LoadJsonl(jsonl_options, Split::kTrain, split);
  TDA_ASSERT_OK(train);
  ASSERT_GT(train->size(), 100);
  std::unique_ptr<Model> model = testing::TrainTinyGpt(config, *train, /*epochs=*/1, 0, nullptr);
  ASSERT_NE(model, nullptr);
  TrainRecipe recipe;
  recipe.dataset = "jsonl";
  recipe.data_dir = jsonl;
  absl::StatusOr<std::string> hash = JsonlCorpusHash({jsonl});
  TDA_ASSERT_OK(hash);
  recipe.corpus_hash = *hash;

  // Streamed: BuildModelIndex reads the rows from the token cache.
  ModelIndexRequest request;
  request.index.model_dir = dir.file("model");
  request.index.out_dir = dir.file("streamed-index");
  request.index.projection_dim_per_side = 8;
  request.index.batch_size = 16;  // several batches and sorting windows
  request.cache_dir = dir.file("cache");
  TDA_ASSERT_OK(model->Save(request.index.model_dir, recipe));
  absl::StatusOr<ModelIndexPlan> plan = BuildModelIndex(request);
  TDA_ASSERT_OK(plan);
  EXPECT_EQ(plan->rows, train->size());
  EXPECT_TRUE(std::filesystem::exists(dir.file("cache")));

  // In memory: the Dataset of DocumentsToDataset.
  IndexBuildOptions in_memory = request.index;
  in_memory.out_dir = dir.file("memory-index");
  TDA_ASSERT_OK(BuildIndex(*train, jsonl, in_memory));
  testing::ExpectSameIndexFiles(request.index.out_dir, in_memory.out_dir);
}

}  // namespace
}  // namespace tda
