#include "ops/build_ensemble_index.h"

#include <filesystem>
#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"
#include "attribution/attributor.h"
#include "common/atomic_file.h"
#include "common/status_macros.h"
#include "index/ensemble_manifest.h"
#include "index/manifest.h"
#include "model/model.h"
#include "model/recipe_data.h"
#include "model/trainer.h"

namespace tda {
namespace {

// What the members trained by the build share: member 0's config and recipe and its training
// data, read on first use and then kept for the next member.
struct RecipeTraining {
  ModelConfig config;
  TrainRecipe recipe;
  std::optional<Dataset> train;
};

// Trains member `member` by member 0's (request.index.model_dir's) recipe with seed
// recipe.seed + member and saves it to `out` (a directory this build owns).
absl::Status TrainMember(const ModelIndexRequest& request, int64_t member, const std::string& out,
                         const ProgressFn& progress, RecipeTraining* training) {
  if (!training->train.has_value()) {
    ASSIGN_OR_RETURN(std::unique_ptr<Model> first,
                     LoadModel(request.index.model_dir, &training->recipe));
    training->config = first->config();
    ASSIGN_OR_RETURN(training->train,
                     LoadRecipeData(training->config, training->recipe, Split::kTrain,
                                    request.data_dir, nullptr, request.allow_changed_corpus,
                                    request.cache_dir));
  }
  TrainRecipe recipe = training->recipe;
  recipe.seed += static_cast<uint64_t>(member);
  ASSIGN_OR_RETURN(std::unique_ptr<Model> model, InitialModel(training->config, recipe));
  ASSIGN_OR_RETURN(TrainReport report, Train(*model, *training->train, recipe, progress));
  return SaveTrainedModel(*model, out, recipe, report);
}

// Removes what this build wrote at `path` (a trained member's model), ignoring errors.
void RemoveOwn(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

}  // namespace

absl::StatusOr<ModelIndexPlan> BuildEnsembleIndex(
    const ModelIndexRequest& request, const ProgressFn& progress,
    const std::function<void(const ModelIndexPlan&)>& on_plan) {
  const std::string& dir = request.index.out_dir;
  const int64_t members = request.ensemble;
  if (members < 2 || members > kMaxIndexEnsembleMembers) {
    return absl::InvalidArgumentError(absl::StrCat(
        "an ensemble index has 2 to ", kMaxIndexEnsembleMembers, " members, not ", members));
  }
  if (static_cast<int64_t>(request.member_models.size()) > members - 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(request.member_models.size(), " member models given for an ensemble of ",
                     members, " (member 0 is the model itself): give at most ", members - 1));
  }
  if (request.collective != nullptr) {
    return absl::InvalidArgumentError(
        "an ensemble index is built in one process, not data-parallel");
  }
  std::error_code ec;
  if (std::filesystem::exists(dir + "/" + kManifestFile, ec)) {
    return absl::FailedPreconditionError(absl::StrCat(
        dir,
        " holds a single index; an ensemble is written to a new directory (or over an older "
        "ensemble): choose another output directory"));
  }
  int64_t old_members = 0;
  if (IsEnsembleDir(dir)) {
    // Over an older ensemble: it stops being one now, so an interrupted build leaves no ensemble
    // of mixed members; the members it listed beyond the new ones are removed at the end.
    absl::StatusOr<EnsembleManifest> old = ReadEnsembleManifest(dir);
    if (old.ok()) old_members = static_cast<int64_t>(old->members.size());
    std::filesystem::remove(dir + "/" + kEnsembleFile, ec);
    if (ec) {
      return absl::InternalError(
          absl::StrCat("cannot remove ", dir, "/", kEnsembleFile, ": ", ec.message()));
    }
  } else if (std::filesystem::exists(dir, ec) && !std::filesystem::is_empty(dir, ec)) {
    return absl::FailedPreconditionError(absl::StrCat(
        dir,
        " is not empty and holds no ensemble; an ensemble is written to a new or empty "
        "directory: choose another output directory"));
  }
  ModelIndexPlan plan;
  RecipeTraining training;
  for (int64_t k = 0; k < members; ++k) {
    ModelIndexRequest member = request;
    member.ensemble = 1;
    member.member_models.clear();
    member.index.out_dir = EnsembleMemberDir(dir, k);
    const std::string trained = absl::StrCat(dir, "/.member-", k, "-model");
    const bool train = k > static_cast<int64_t>(request.member_models.size());
    if (k > 0) {
      member.index.model_dir = train ? trained : request.member_models[k - 1];
    }
    if (train) {
      RETURN_IF_ERROR(MakeDirectories(dir));
      RETURN_IF_ERROR(TrainMember(
          request, k, trained,
          [&](std::string_view stage, int64_t done, int64_t total, std::string_view detail) {
            ReportProgress(progress, stage, done, total,
                           absl::StrCat("member ", k + 1, " of ", members,
                                        detail.empty() ? "" : ", ", std::string(detail)));
          },
          &training));
    }
    absl::StatusOr<ModelIndexPlan> built =
        BuildModelIndex(member, progress, [&](ModelIndexPlan member_plan) {
          member_plan.member = k;
          member_plan.members = members;
          if (on_plan) on_plan(member_plan);
        });
    if (train) RemoveOwn(trained);  // the member's index keeps its copy in model/
    if (!built.ok()) return built.status();
    if (k > 0 && built->rows != plan.rows) {
      return absl::FailedPreconditionError(absl::StrCat(
          "ensemble member ", k, " (", member.index.model_dir, ") indexes ", built->rows,
          " training rows, member 0 ", plan.rows, ": members must be trained on the same data"));
    }
    plan = *built;
    plan.member = k;
    plan.members = members;
  }
  RETURN_IF_ERROR(WriteEnsembleManifest(dir, members));
  // Opened as a reader opens it: members of other rows, ids, shards or dimensions (e.g. another
  // architecture) are no ensemble, and the ensemble.json just written is taken back.
  absl::StatusOr<std::unique_ptr<Attributor>> opened =
      Attributor::Open(dir, GradientIndex::Verify::kSizes);
  if (!opened.ok()) {
    std::filesystem::remove(dir + "/" + kEnsembleFile, ec);
    return absl::FailedPreconditionError(absl::StrCat(
        "the members built in ", dir, " do not form an ensemble (", opened.status().message(),
        "); give models of one architecture trained on the same data"));
  }
  for (int64_t k = members; k < old_members; ++k) RemoveOwn(EnsembleMemberDir(dir, k));
  return plan;
}

}  // namespace tda
