// Trains a model on a data set with a TrainRecipe (Adam or SGD with L2 weight decay, or AdamW
// with decoupled decay; constant or warmup + cosine learning rate; optional gradient-norm
// clipping; seeded shuffling), and evaluates loss / accuracy. Deterministic for a given recipe
// and thread count. Sequence models train on the mean cross-entropy per target token.
// Adam and AdamW runs also report their final second moment (TrainReport::optimizer_state),
// which callers save beside the model (SaveOptimizerState, model/optimizer_state.h).
#pragma once

#include <optional>

#include "absl/status/statusor.h"
#include "common/progress.h"
#include "data/dataset.h"
#include "model/model.h"
#include "model/model_config.h"
#include "model/optimizer_state.h"

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
  // Adam / AdamW: exp_avg_sq of the tracked parameters after the last step; SGD: none.
  std::optional<OptimizerState> optimizer_state;
};

// Saves `model` to `dir` (Model::Save) and, when the report has one, its optimizer state.
[[nodiscard]] absl::Status SaveTrainedModel(const Model& model, const std::string& dir,
                                            const TrainRecipe& recipe, const TrainReport& report);

// The model training with `recipe` starts from: the weights of recipe.init_model when
// fine-tuning (kFailedPrecondition when its fingerprint or architecture is no longer the
// recorded one), else CreateModel(config, recipe.seed).
[[nodiscard]] absl::StatusOr<std::unique_ptr<Model>> InitialModel(const ModelConfig& config,
                                                                  const TrainRecipe& recipe);

// Trains `model` in place on the first recipe.train_size samples of `train` (all if 0).
[[nodiscard]] absl::StatusOr<TrainReport> Train(Model& model, const Dataset& train,
                                                const TrainRecipe& recipe,
                                                const ProgressFn& progress = {});

[[nodiscard]] absl::StatusOr<Evaluation> Evaluate(const Model& model, const Dataset& data);

// Baseline for sequence models: the mean cross-entropy per target token of `data` under the
// unigram (token frequency, add-one smoothed) distribution of `train`'s targets.
double UnigramCrossEntropy(const Dataset& train, const Dataset& data, int64_t classes);

}  // namespace tda
