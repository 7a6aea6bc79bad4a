#include "ops/lds_experiment.h"

#include <memory>
#include <utility>

#include "ablation/retrain_cache.h"
#include "common/status_macros.h"
#include "model/model.h"
#include "model/trainer.h"

namespace tda {

absl::StatusOr<LdsExperimentResult> RunLdsExperiment(
    const LdsExperiment& experiment, const Dataset& train, const Dataset& queries,
    const ProgressFn& progress, const std::function<void(const LdsMethodResult&)>& on_method) {
  RETURN_IF_ERROR(ValidateLdsOptions(experiment.lds, train.size()));
  ModelConfig config = experiment.config;
  config.input_dim = train.feature_dim;
  if (!train.class_names.empty()) {
    config.num_classes = static_cast<int64_t>(train.class_names.size());
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Model> model, CreateModel(config, experiment.recipe.seed));
  RETURN_IF_ERROR(Train(*model, train, experiment.recipe, progress).status());
  const std::string key = RetrainingKey(config, experiment.recipe, experiment.data_path, train,
                                        queries, experiment.lds);
  ASSIGN_OR_RETURN(CachedRetraining cached, CachedRetrain(experiment.retrain_cache_dir, key, [&]() {
                     return RetrainOnSubsets(config, experiment.recipe, train, queries,
                                             experiment.lds, progress);
                   }));
  const LdsRetraining& retraining = cached.retraining;
  LdsExperimentResult result;
  result.parameters = model->layout().total();
  result.retrain_seconds = retraining.seconds;
  result.retraining_from_cache = cached.from_cache;
  result.retraining_path = cached.path;
  MethodSettings settings;
  settings.measurement = experiment.lds.measurement;
  if (experiment.damping.has_value()) {
    settings.damping = *experiment.damping;
  } else {
    ASSIGN_OR_RETURN(settings.damping,
                     DefaultDamping(*model, train, experiment.recipe.weight_decay, settings.fit));
  }
  result.damping = settings.damping;
  for (Method method : experiment.methods) {
    if (experiment.cancelled && experiment.cancelled()) return absl::CancelledError("cancelled");
    LdsMethodResult scored;
    ASSIGN_OR_RETURN(scored.scores,
                     ComputeMethodScores(method, *model, train, queries, settings, progress));
    ASSIGN_OR_RETURN(scored.lds, LinearDatamodelingScore(retraining, scored.scores.scores));
    if (on_method) on_method(scored);
    result.methods.push_back(std::move(scored));
  }
  return result;
}

}  // namespace tda
