// Trains a model on a data set with a TrainRecipe (Adam or SGD with L2 weight decay, or AdamW
// with decoupled decay; constant or warmup + cosine learning rate; optional gradient-norm
// clipping; seeded shuffling), and evaluates loss / accuracy. Deterministic for a given recipe
// and thread count. Sequence models train on the mean cross-entropy per target token.
#pragma once

#include "absl/status/statusor.h"
#include "common/progress.h"
#include "data/dataset.h"
#include "model/model.h"
#include "model/model_config.h"

namespace tda {

// Classifiers: per sample. Sequences: per target token (nats/byte for byte tokens), accuracy
// of the most likely next token.
struct Evaluation {
  double mean_loss = 0;
  double accuracy = 0;
};

struct TrainReport {
  double seconds = 0;
  double final_epoch_loss = 0;  // mean training loss over the last epoch
  double first_step_loss = 0;   // sequences: the loss of the first batch, before any update
};

// The model training with `recipe` starts from: the weights of recipe.init_model when
// fine-tuning (kFailedPrecondition when its fingerprint or architecture is no longer the
// recorded one), else CreateModel(config, recipe.seed).
[[nodiscard]] absl::StatusOr<std::unique_ptr<Model>> InitialModel(const ModelConfig& config,
                                                                  const TrainRecipe& recipe);

// Trains `model` in place on the first recipe.train_size samples of `train` (all if 0).
[[nodiscard]] absl::StatusOr<TrainReport> Train(Model& model, const Dataset& train,
                                                const TrainRecipe& recipe,
                                                const ProgressFn& progress = {});

absl::StatusOr<Evaluation> Evaluate(const Model& model, const Dataset& data);

// Baseline for sequence models: the mean cross-entropy per target token of `data` under the
// unigram (token frequency, add-one smoothed) distribution of `train`'s targets.
double UnigramCrossEntropy(const Dataset& train, const Dataset& data, int64_t classes);

}  // namespace tda
