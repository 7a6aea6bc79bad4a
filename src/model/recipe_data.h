// The data a model was trained on, found from its saved recipe (config.json): Fashion-MNIST
// images, a tensors corpus (.npy arrays: data/tensor_corpus.h), fortunes documents or a JSONL
// corpus (as rows of the model's context length). Used by everything that
// needs the training set or held-out data back (index builds, ablations, jobs).
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "data/dataset.h"
#include "data/fashion_mnist.h"
#include "model/model_config.h"

namespace tda {

// The recipe's training samples (Split::kTrain: the first recipe.train_size, all if 0) or the
// held-out samples (Split::kTest: the test images, or the held-out documents by id hash), read
// from `data_dir` (empty: the recipe's data_dir, else the data set's default directory; jsonl:
// the comma-separated files; tensors: the corpus spec of tensor_corpus.h). `truncated` (optional) receives how many documents were cut at
// the context length. A jsonl corpus whose content hash differs from the one the model was
// trained on is kFailedPrecondition unless `allow_changed_corpus`.
absl::StatusOr<Dataset> LoadRecipeData(const ModelConfig& config, const TrainRecipe& recipe,
                                       Split split, std::string data_dir = "",
                                       int64_t* truncated = nullptr,
                                       bool allow_changed_corpus = false);

}  // namespace tda
