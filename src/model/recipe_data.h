// The data a model was trained on, found from its saved recipe (config.json): Fashion-MNIST images,
// a tensors corpus (.npy arrays: data/tensor_corpus.h), fortunes documents or a JSONL corpus (as
// rows of the model's context length). Used by everything that needs the training set or held-out
// data back (index builds, ablations, jobs).
//
// A JSONL corpus is read through its token cache (data/token_cache.h): tokenized once with the
// recipe's tokenizer (RecipeTokenizer), then served from the mapped cache.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "data/dataset.h"
#include "data/fashion_mnist.h"
#include "data/row_source.h"
#include "data/tokenizer.h"
#include "model/model_config.h"

namespace tda {

struct RecipeRowsOptions {
  // Empty: the recipe's data_dir, else the data set's default directory; jsonl: the comma-separated
  // files; tensors: the corpus spec of tensor_corpus.h.
  std::string data_dir;
  // A jsonl corpus whose content hash differs from the one the model was trained on is
  // kFailedPrecondition unless this is set.
  bool allow_changed_corpus = false;
  std::string cache_dir;  // root of the token cache; "" = DefaultTokenCacheRoot()
};

struct RecipeRows {
  std::unique_ptr<RowSource> rows;
  int64_t truncated = 0;  // documents cut at the context length
};

// The recipe's training samples (Split::kTrain: the first recipe.train_size, all if 0) or the
// held-out samples (Split::kTest: the test images, or the held-out documents by id hash) as a row
// source. A jsonl corpus is served from its token cache without being loaded (built on first use);
// the other kinds are loaded into memory behind the same interface.
[[nodiscard]] absl::StatusOr<RecipeRows> OpenRecipeRows(const ModelConfig& config,
                                                        const TrainRecipe& recipe, Split split,
                                                        const RecipeRowsOptions& options = {});

// The tokenizer of a sequence model's recipe: the byte tokenizer unless the recipe records one,
// then the files at recipe.tokenizer_path (LoadModel sets it to the model directory), their
// fingerprint checked against the recipe's. kFailedPrecondition naming both numbers when the
// model's vocab_size is smaller than the tokenizer's ids.
[[nodiscard]] absl::StatusOr<std::shared_ptr<const Tokenizer>> RecipeTokenizer(
    const ModelConfig& config, const TrainRecipe& recipe);

// The same rows in memory (see OpenRecipeRows; `truncated`, optional, receives how many documents
// were cut at the context length).
[[nodiscard]] absl::StatusOr<Dataset> LoadRecipeData(const ModelConfig& config,
                                                     const TrainRecipe& recipe, Split split,
                                                     std::string data_dir = "",
                                                     int64_t* truncated = nullptr,
                                                     bool allow_changed_corpus = false,
                                                     const std::string& cache_dir = "");

// LoadRecipeData shared: the kinds that are loaded into memory (every kind but jsonl, whose
// rows are materialised per call) are loaded once per process for the same data set, split
// and row options, and the copy is shared for as long as any caller holds it, so several
// served indexes (versions of one model, models over one corpus) hold one copy of their
// samples. A failed load is not kept: the next call tries again.
[[nodiscard]] absl::StatusOr<std::shared_ptr<const Dataset>> LoadSharedRecipeData(
    const ModelConfig& config, const TrainRecipe& recipe, Split split, std::string data_dir = "");

}  // namespace tda
