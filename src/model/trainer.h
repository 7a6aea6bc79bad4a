// Trains a model on a data set with a TrainRecipe (Adam or SGD, L2 weight decay, seeded
// shuffling), and evaluates loss / accuracy. Deterministic for a given recipe and thread count.
#pragma once

#include "absl/status/statusor.h"
#include "common/progress.h"
#include "data/dataset.h"
#include "model/model.h"
#include "model/model_config.h"

namespace tda {

struct Evaluation {
  double mean_loss = 0;
  double accuracy = 0;
};

struct TrainReport {
  double seconds = 0;
  double final_epoch_loss = 0;  // mean training loss over the last epoch
};

// Trains `model` in place on the first recipe.train_size samples of `train` (all if 0).
absl::StatusOr<TrainReport> Train(Model& model, const Dataset& train, const TrainRecipe& recipe,
                                  const ProgressFn& progress = {});

absl::StatusOr<Evaluation> Evaluate(const Model& model, const Dataset& data);

}  // namespace tda
