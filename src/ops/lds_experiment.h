// The use case "how faithful is each attribution method": the linear datamodeling score
// protocol (TRAK / dattri) on a classifier: train a model on `train`, retrain it from scratch
// on random subsets (or read those retrainings from the cache), score every method against
// the retrained query measurements (ablation/lds.h, measurement.h). With `ensemble` E > 1 the
// scores are those of E models trained with seeds seed..seed+E-1 (ablation/ensemble_scores.h),
// scored against the same retrainings (single models, as for E = 1). Written once here; `tda
// eval lds` and the evaluate-lds job kind call it with the data and settings they parsed.
//
// Thread-compatible: one experiment per call.
#pragma once

#include <functional>
#include <optional>
#include <string>
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
  int64_t ensemble = 1;             // models whose mean score is the method's (E >= 1)
  bool unit_norm = false;           // every method's scores unit-normalised (TrackStar)
  // Saved retrainings (ablation/retrain_cache.h) and trained models (trained_model_cache.h):
  // the directory ("" = none) and where the data came from (part of the keys).
  std::string retrain_cache_dir;
  std::string data_path;
  std::function<bool()> cancelled;  // checked between methods (optional)
};

struct LdsMethodResult {
  LdsScore lds;         // of the ensemble's mean scores (of the model when E = 1)
  MethodScores scores;  // N x Q, the members' mean; seconds summed over members, peak the max
  std::vector<double> member_lds;      // E: each member's own LDS (member 0 = the E = 1 run)
  std::vector<double> ensemble_curve;  // E: LDS of the mean of members 0..k (last = lds.mean)
};

struct LdsExperimentResult {
  int64_t parameters = 0;  // of the trained model
  double damping = 0;      // used by every method (of member 0 in an ensemble)
  std::vector<double> member_dampings;  // per member
  double train_seconds = 0;             // training the model (all members), or loading it
  int64_t models_from_cache = 0;        // members read from the cache instead of trained
  double retrain_seconds = 0;  // of the retraining used (when cached: when it was made)
  bool retraining_from_cache = false;
  std::string retraining_path;           // the cache entry ("" without a cache)
  std::vector<LdsMethodResult> methods;  // in the order asked
};

// `on_method` (optional) is told each method's result as soon as it is scored.
// kCancelled when `cancelled` says so; the errors of training, retraining and scoring.
[[nodiscard]] absl::StatusOr<LdsExperimentResult> RunLdsExperiment(
    const LdsExperiment& experiment, const Dataset& train, const Dataset& queries,
    const ProgressFn& progress = {},
    const std::function<void(const LdsMethodResult&)>& on_method = {});

}  // namespace tda
