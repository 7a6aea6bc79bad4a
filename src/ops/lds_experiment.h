// The use case "how faithful is each attribution method": the linear datamodeling score
// protocol (TRAK / dattri) on a classifier: train a model on `train`, retrain it from scratch
// on random subsets, score every method against the retrained query losses
// (ablation/lds.h). Written once here; `tda eval lds` and the evaluate-lds job kind call it
// with the data and settings they parsed.
//
// Thread-compatible: one experiment per call.
#pragma once

#include <functional>
#include <optional>
#include <vector>

#include "ablation/lds.h"
#include "ablation/method_scores.h"
#include "absl/status/statusor.h"
#include "common/progress.h"
#include "data/dataset.h"
#include "model/model_config.h"

namespace tda {

struct LdsExperiment {
  ModelConfig config;  // an mlp; input_dim is taken from the training data
  TrainRecipe recipe;  // of the model and of every retraining
  LdsOptions lds;
  std::vector<Method> methods;
  std::optional<double> damping;    // absolute, for every method; default: DefaultDamping
  std::function<bool()> cancelled;  // checked between methods (optional)
};

struct LdsMethodResult {
  LdsScore lds;
  MethodScores scores;  // N x Q, what the score was computed from
};

struct LdsExperimentResult {
  int64_t parameters = 0;  // of the trained model
  double damping = 0;      // used by every method
  double retrain_seconds = 0;
  std::vector<LdsMethodResult> methods;  // in the order asked
};

// `on_method` (optional) is told each method's result as soon as it is scored.
// kCancelled when `cancelled` says so; the errors of training, retraining and scoring.
[[nodiscard]] absl::StatusOr<LdsExperimentResult> RunLdsExperiment(
    const LdsExperiment& experiment, const Dataset& train, const Dataset& queries,
    const ProgressFn& progress = {},
    const std::function<void(const LdsMethodResult&)>& on_method = {});

}  // namespace tda
