#include "ablation/ensemble_scores.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <utility>

#include "ablation/trained_model_cache.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "model/model.h"
#include "model/trainer.h"

namespace tda {

absl::Status ValidateEnsembleSize(int64_t members) {
  if (members >= 1 && members <= kMaxEnsembleMembers) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("an ensemble has 1 to ", kMaxEnsembleMembers,
                                                 " models (each a full training run), got ",
                                                 members));
}

absl::StatusOr<EnsembleScores> ComputeEnsembleScores(
    const ModelConfig& config, const TrainRecipe& recipe, const std::vector<Method>& methods,
    const Dataset& train, const Dataset& queries, const EnsembleOptions& options,
    const ProgressFn& progress, const EnsembleMemberFn& on_member) {
  RETURN_IF_ERROR(ValidateEnsembleSize(options.members));
  if (options.damping.has_value() && !(*options.damping >= 0 && std::isfinite(*options.damping))) {
    return absl::InvalidArgumentError(
        absl::StrCat("damping must be a finite number >= 0, got ", *options.damping));
  }
  if (methods.empty()) return absl::InvalidArgumentError("an ensemble needs at least one method");
  EnsembleScores out;
  std::vector<Eigen::MatrixXd> sums(methods.size());
  out.methods.resize(methods.size());
  for (size_t m = 0; m < methods.size(); ++m) out.methods[m].method = methods[m];
  for (int64_t member = 0; member < options.members; ++member) {
    TrainRecipe member_recipe = recipe;
    member_recipe.seed = recipe.seed + static_cast<uint64_t>(member);
    const auto start = std::chrono::steady_clock::now();
    ASSIGN_OR_RETURN(
        CachedModel trained,
        CachedTrain(options.cache_dir,
                    TrainedModelKey(config, member_recipe, options.data_path, train), member_recipe,
                    [&]() -> absl::StatusOr<std::unique_ptr<Model>> {
                      ASSIGN_OR_RETURN(std::unique_ptr<Model> model,
                                       CreateModel(config, member_recipe.seed));
                      RETURN_IF_ERROR(Train(*model, train, member_recipe, progress).status());
                      return model;
                    }));
    const std::unique_ptr<Model>& model = trained.model;
    if (trained.from_cache) ++out.members_from_cache;
    out.train_seconds +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    out.parameters = model->layout().total();
    MethodSettings settings = options.settings;
    if (options.damping.has_value()) {
      settings.damping = *options.damping;
    } else {
      ASSIGN_OR_RETURN(settings.damping,
                       DefaultDamping(*model, train, recipe.weight_decay, settings.fit));
    }
    out.dampings.push_back(settings.damping);
    for (size_t m = 0; m < methods.size(); ++m) {
      if (options.cancelled && options.cancelled()) return absl::CancelledError("cancelled");
      ASSIGN_OR_RETURN(MethodScores own,
                       ComputeMethodScores(methods[m], *model, train, queries, settings, progress));
      EnsembleMethodScores& result = out.methods[m];
      if (member == 0) {
        sums[m] = own.scores;
        result.detail = own.detail;
      } else {
        sums[m] += own.scores;
      }
      result.seconds += own.seconds;
      result.peak_bytes = std::max(result.peak_bytes, own.peak_bytes);
      if (on_member) RETURN_IF_ERROR(on_member(member, m, own, sums[m]));
    }
  }
  const double scale = 1.0 / static_cast<double>(options.members);
  for (size_t m = 0; m < methods.size(); ++m) {
    out.methods[m].mean = std::move(sums[m]);
    if (options.members > 1) out.methods[m].mean *= scale;
  }
  return out;
}

}  // namespace tda
