#include "model/recipe_data.h"

#include <iterator>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "data/byte_tokenizer.h"
#include "data/cached_text_rows.h"
#include "data/dataset_rows.h"
#include "data/fortunes.h"
#include "data/jsonl_corpus.h"
#include "data/tensor_corpus.h"
#include "data/token_cache.h"
#include "data/token_rows.h"
#include "data/tokenizer_files.h"

namespace tda {
namespace {

// The rows of a kind that is loaded into memory (everything but jsonl).
absl::StatusOr<Dataset> LoadInMemory(const TrainRecipe& recipe, bool documents,
                                     const std::string& data_dir, Split split, int64_t limit,
                                     const TextSplitOptions& options, int64_t* truncated) {
  if (recipe.dataset == kTensorsDataset) {
    ASSIGN_OR_RETURN(TensorCorpusFiles files, ParseTensorCorpusSpec(data_dir));
    return LoadTensorCorpus(files, split, limit, recipe.held_out_fraction);
  }
  if (!documents) return LoadFashionMnist(data_dir, split, limit);
  return LoadFortunes(data_dir, split, options, truncated);
}

// The rows of a recipe: in memory (every kind but jsonl) or served by the token cache.
struct ResolvedRows {
  Dataset data;
  std::unique_ptr<CachedTextRows> cached;
  int64_t truncated = 0;
};

}  // namespace

absl::StatusOr<std::shared_ptr<const Tokenizer>> RecipeTokenizer(const ModelConfig& config,
                                                                 const TrainRecipe& recipe) {
  std::shared_ptr<const Tokenizer> tokenizer;
  if (recipe.tokenizer_fingerprint.empty()) {
    tokenizer = std::make_shared<ByteTokenizer>();
  } else {
    if (recipe.tokenizer_path.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("the recipe records tokenizer ", recipe.tokenizer_name,
                       " but no tokenizer files were found beside the model; restore them"));
    }
    ASSIGN_OR_RETURN(const TokenizerFiles files, FindTokenizerFiles(recipe.tokenizer_path));
    ASSIGN_OR_RETURN(const std::string fingerprint, TokenizerFingerprint(files));
    if (fingerprint != recipe.tokenizer_fingerprint) {
      return absl::FailedPreconditionError(
          absl::StrCat("the tokenizer files at ", recipe.tokenizer_path, " have fingerprint ",
                       fingerprint, ", the model was trained with ", recipe.tokenizer_fingerprint,
                       ": restore the files the model was saved with"));
    }
    ASSIGN_OR_RETURN(tokenizer, LoadTokenizerFiles(files));
  }
  RETURN_IF_ERROR(CheckVocabularyFits(*tokenizer, config.num_classes,
                                      absl::StrCat("the ", config.kind, " model")));
  return tokenizer;
}

namespace {

// The data directory asked for, else the recipe's, else the data set's default.
std::string ResolvedDataDir(const ModelConfig& config, const TrainRecipe& recipe,
                            std::string requested) {
  if (requested.empty()) requested = recipe.data_dir;
  if (requested.empty()) {
    requested = config.is_sequence() ? kFortunesDefaultDir : kFashionMnistDefaultDir;
  }
  return requested;
}

// How the recipe's documents become rows of `split`.
TextSplitOptions RecipeSplitOptions(const ModelConfig& config, const TrainRecipe& recipe,
                                    Split split) {
  TextSplitOptions options;
  options.context_length = config.context_length;
  options.limit = split == Split::kTrain ? recipe.train_size : 0;
  options.held_out_fraction = recipe.held_out_fraction;
  options.chunk_stride = recipe.chunk_stride;
  return options;
}

// Everything LoadInMemory reads for an in-memory kind: equal keys, equal data.
std::string InMemoryDataKey(const ModelConfig& config, const TrainRecipe& recipe, Split split,
                            const std::string& data_dir) {
  const TextSplitOptions options = RecipeSplitOptions(config, recipe, split);
  return absl::StrCat(recipe.dataset, "|", config.is_sequence(), "|", data_dir, "|",
                      split == Split::kTrain ? "train" : "test", "|", options.limit, "|",
                      options.held_out_fraction, "|", options.context_length, "|",
                      options.chunk_stride, "|", recipe.tokenizer_fingerprint);
}

absl::StatusOr<ResolvedRows> ResolveRows(const ModelConfig& config, const TrainRecipe& recipe,
                                         Split split, const RecipeRowsOptions& request) {
  const bool documents = config.is_sequence();
  const std::string data_dir = ResolvedDataDir(config, recipe, request.data_dir);
  const TextSplitOptions options = RecipeSplitOptions(config, recipe, split);
  const int64_t limit = options.limit;
  ResolvedRows out;
  if (documents && recipe.dataset != "jsonl" && !recipe.tokenizer_fingerprint.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the model's tokenizer ", recipe.tokenizer_name,
        " reads JSONL corpora only; the built-in fortunes corpus is byte-tokenized. Write the "
        "documents as JSONL and train with --data"));
  }
  if (!documents || recipe.dataset != "jsonl") {
    ASSIGN_OR_RETURN(
        out.data, LoadInMemory(recipe, documents, data_dir, split, limit, options, &out.truncated));
    return out;
  }

  RETURN_IF_ERROR(ValidateTextSplitOptions(options));
  JsonlOptions jsonl = recipe.jsonl;
  jsonl.paths = absl::StrSplit(data_dir, ',', absl::SkipEmpty());
  TokenCacheOptions cache_options;
  cache_options.root = request.cache_dir;
  ASSIGN_OR_RETURN(cache_options.tokenizer, RecipeTokenizer(config, recipe));
  cache_options.tokenizer_files = recipe.tokenizer_fingerprint;
  ASSIGN_OR_RETURN(cache_options.corpus_hash, JsonlCorpusHash(jsonl.paths));
  if (!recipe.corpus_hash.empty() && !request.allow_changed_corpus &&
      cache_options.corpus_hash != recipe.corpus_hash) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the corpus ", data_dir, " has changed since the model was trained (content hash ",
        cache_options.corpus_hash, ", trained on ", recipe.corpus_hash,
        "): its rows would not be the ones the model saw. Retrain, restore the files, or pass "
        "--allow-changed-corpus"));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<TokenCache> cache, TokenCache::Open(jsonl, cache_options));
  ASSIGN_OR_RETURN(out.cached,
                   CachedTextRows::Open(std::shared_ptr<const TokenCache>(std::move(cache)),
                                        JsonlCorpusName(jsonl), split, options));
  out.truncated = out.cached->truncated();
  return out;
}

}  // namespace

absl::StatusOr<RecipeRows> OpenRecipeRows(const ModelConfig& config, const TrainRecipe& recipe,
                                          Split split, const RecipeRowsOptions& options) {
  ASSIGN_OR_RETURN(ResolvedRows resolved, ResolveRows(config, recipe, split, options));
  RecipeRows out;
  out.truncated = resolved.truncated;
  if (resolved.cached != nullptr) {
    out.rows = std::move(resolved.cached);
  } else {
    out.rows = OwnDatasetRows(std::move(resolved.data));
  }
  return out;
}

absl::StatusOr<Dataset> LoadRecipeData(const ModelConfig& config, const TrainRecipe& recipe,
                                       Split split, std::string data_dir, int64_t* truncated,
                                       bool allow_changed_corpus, const std::string& cache_dir) {
  RecipeRowsOptions options;
  options.data_dir = std::move(data_dir);
  options.allow_changed_corpus = allow_changed_corpus;
  options.cache_dir = cache_dir;
  ASSIGN_OR_RETURN(ResolvedRows resolved, ResolveRows(config, recipe, split, options));
  if (truncated != nullptr) *truncated = resolved.truncated;
  if (resolved.cached != nullptr) return MaterializeRows(*resolved.cached);
  return std::move(resolved.data);
}

absl::StatusOr<std::shared_ptr<const Dataset>> LoadSharedRecipeData(const ModelConfig& config,
                                                                    const TrainRecipe& recipe,
                                                                    Split split,
                                                                    std::string data_dir) {
  const bool documents = config.is_sequence();
  if (documents && recipe.dataset == "jsonl") {
    ASSIGN_OR_RETURN(Dataset data, LoadRecipeData(config, recipe, split, std::move(data_dir)));
    return std::make_shared<const Dataset>(std::move(data));
  }
  data_dir = ResolvedDataDir(config, recipe, std::move(data_dir));
  const std::string key = InMemoryDataKey(config, recipe, split, data_dir);
  struct Entry {
    std::once_flag once;
    absl::StatusOr<std::shared_ptr<const Dataset>> data = absl::UnknownError("not loaded");
  };
  static std::mutex mu;
  static auto* entries = new std::map<std::string, std::weak_ptr<Entry>>();
  std::shared_ptr<Entry> entry;
  {
    std::lock_guard<std::mutex> lock(mu);
    std::weak_ptr<Entry>& slot = (*entries)[key];
    entry = slot.lock();
    if (entry == nullptr) {
      entry = std::make_shared<Entry>();
      slot = entry;
      // The data of indexes no longer served: their slots are dropped as new ones are made.
      for (auto it = entries->begin(); it != entries->end();) {
        it = it->second.expired() ? entries->erase(it) : std::next(it);
      }
    }
  }
  std::call_once(entry->once, [&] {
    absl::StatusOr<Dataset> loaded = LoadRecipeData(config, recipe, split, data_dir);
    if (!loaded.ok()) {
      entry->data = loaded.status();
      return;
    }
    entry->data = std::make_shared<const Dataset>(std::move(*loaded));
  });
  if (!entry->data.ok()) {
    std::lock_guard<std::mutex> lock(mu);
    auto it = entries->find(key);
    if (it != entries->end() && it->second.lock() == entry) entries->erase(it);
    return entry->data.status();
  }
  // Holders keep the entry alive (the aliasing pointer owns it), so the next caller shares it.
  return std::shared_ptr<const Dataset>(entry, entry->data->get());
}

}  // namespace tda
