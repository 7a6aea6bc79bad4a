#include "ops/build_model_index.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "data/fashion_mnist.h"
#include "data/fortunes.h"
#include "model/model.h"
#include "model/recipe_data.h"
#include "ops/build_ensemble_index.h"

namespace tda {

absl::StatusOr<FisherKind> ParseFisherKind(const std::string& name) {
  if (name == "true") return FisherKind::kTrue;
  if (name == "empirical") return FisherKind::kEmpirical;
  return absl::InvalidArgumentError(
      absl::StrCat("fisher must be true or empirical, got '", name, "'"));
}

absl::StatusOr<ModelIndexPlan> BuildModelIndex(
    const ModelIndexRequest& request, const ProgressFn& progress,
    const std::function<void(const ModelIndexPlan&)>& on_plan) {
  if (request.ensemble != 1) return BuildEnsembleIndex(request, progress, on_plan);
  TrainRecipe recipe;
  ASSIGN_OR_RETURN(std::unique_ptr<Model> model, LoadModel(request.index.model_dir, &recipe));
  const ModelConfig& config = model->config();
  ModelIndexPlan plan;
  plan.documents = config.is_sequence();
  plan.context_length = config.context_length;
  plan.chunk_stride = recipe.chunk_stride;
  plan.data_dir = request.data_dir;
  if (plan.data_dir.empty()) plan.data_dir = recipe.data_dir;
  if (plan.data_dir.empty()) {
    plan.data_dir = plan.documents ? kFortunesDefaultDir : kFashionMnistDefaultDir;
  }
  // The model's training rows as its recipe records them (a gpt: one row per document, or per
  // window of a long document when its recipe chunks them).
  TrainRecipe data_recipe = recipe;
  if (request.train_size >= 0) data_recipe.train_size = request.train_size;
  RecipeRowsOptions rows_options;
  rows_options.data_dir = plan.data_dir;
  rows_options.allow_changed_corpus = request.allow_changed_corpus;
  rows_options.cache_dir = request.cache_dir;
  ASSIGN_OR_RETURN(RecipeRows train,
                   OpenRecipeRows(config, data_recipe, Split::kTrain, rows_options));
  plan.truncated = train.truncated;
  plan.rows = train.rows->size();
  if (on_plan) on_plan(plan);
  RETURN_IF_ERROR(
      BuildIndex(*train.rows, plan.data_dir, request.index, progress, request.collective));
  return plan;
}

}  // namespace tda
