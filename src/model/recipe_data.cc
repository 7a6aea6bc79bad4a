#include "model/recipe_data.h"

#include "data/fortunes.h"

namespace tda {

absl::StatusOr<Dataset> LoadRecipeData(const ModelConfig& config, const TrainRecipe& recipe,
                                       Split split, std::string data_dir, int64_t* truncated) {
  const bool documents = config.is_sequence();
  if (data_dir.empty()) data_dir = recipe.data_dir;
  if (data_dir.empty()) data_dir = documents ? kFortunesDefaultDir : kFashionMnistDefaultDir;
  const int64_t limit = split == Split::kTrain ? recipe.train_size : 0;
  if (!documents) return LoadFashionMnist(data_dir, split, limit);
  FortunesOptions options;
  options.context_length = config.context_length;
  options.limit = limit;
  options.held_out_fraction = recipe.held_out_fraction;
  return LoadFortunes(data_dir, split, options, truncated);
}

}  // namespace tda
