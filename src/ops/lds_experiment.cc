#include "ops/lds_experiment.h"

#include <utility>

#include "ablation/ensemble_scores.h"
#include "ablation/retrain_cache.h"
#include "common/status_macros.h"

namespace tda {

absl::StatusOr<LdsExperimentResult> RunLdsExperiment(
    const LdsExperiment& experiment, const Dataset& train, const Dataset& queries,
    const ProgressFn& progress, const std::function<void(const LdsMethodResult&)>& on_method) {
  RETURN_IF_ERROR(ValidateLdsOptions(experiment.lds, train.size()));
  RETURN_IF_ERROR(ValidateEnsembleSize(experiment.ensemble));
  ModelConfig config = experiment.config;
  config.input_dim = train.feature_dim;
  if (!train.class_names.empty()) {
    config.num_classes = static_cast<int64_t>(train.class_names.size());
  }
  const std::string key = RetrainingKey(config, experiment.recipe, experiment.data_path, train,
                                        queries, experiment.lds);
  ASSIGN_OR_RETURN(CachedRetraining cached, CachedRetrain(experiment.retrain_cache_dir, key, [&]() {
                     return RetrainOnSubsets(config, experiment.recipe, train, queries,
                                             experiment.lds, progress);
                   }));
  const LdsRetraining& retraining = cached.retraining;
  LdsExperimentResult result;
  result.retrain_seconds = retraining.seconds;
  result.retraining_from_cache = cached.from_cache;
  result.retraining_path = cached.path;
  result.methods.resize(experiment.methods.size());

  EnsembleOptions options;
  options.members = experiment.ensemble;
  options.damping = experiment.damping;
  options.settings.measurement = experiment.lds.measurement;
  options.settings.unit_norm = experiment.unit_norm;
  options.cancelled = experiment.cancelled;
  options.cache_dir = experiment.retrain_cache_dir;
  options.data_path = experiment.data_path;
  // Each member's own LDS and that of the ensemble of the members so far, as they come.
  auto on_member = [&](int64_t member, size_t m, const MethodScores& own,
                       const Eigen::MatrixXd& running_sum) -> absl::Status {
    LdsMethodResult& r = result.methods[m];
    ASSIGN_OR_RETURN(LdsScore single, LinearDatamodelingScore(retraining, own.scores));
    r.member_lds.push_back(single.mean);
    if (member == 0) {
      r.ensemble_curve.push_back(single.mean);
      return absl::OkStatus();
    }
    ASSIGN_OR_RETURN(
        LdsScore so_far,
        LinearDatamodelingScore(retraining, running_sum * (1.0 / static_cast<double>(member + 1))));
    r.ensemble_curve.push_back(so_far.mean);
    return absl::OkStatus();
  };
  ASSIGN_OR_RETURN(EnsembleScores ensemble,
                   ComputeEnsembleScores(config, experiment.recipe, experiment.methods, train,
                                         queries, options, progress, on_member));
  result.parameters = ensemble.parameters;
  result.member_dampings = ensemble.dampings;
  result.damping = ensemble.dampings.front();
  result.train_seconds = ensemble.train_seconds;
  result.models_from_cache = ensemble.members_from_cache;
  for (size_t m = 0; m < experiment.methods.size(); ++m) {
    LdsMethodResult& r = result.methods[m];
    EnsembleMethodScores& e = ensemble.methods[m];
    r.scores.method = e.method;
    r.scores.scores = std::move(e.mean);
    r.scores.seconds = e.seconds;
    r.scores.peak_bytes = e.peak_bytes;
    r.scores.detail = e.detail;
    ASSIGN_OR_RETURN(r.lds, LinearDatamodelingScore(retraining, r.scores.scores));
    if (on_method) on_method(r);
  }
  return result;
}

}  // namespace tda
