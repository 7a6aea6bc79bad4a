#include "model/recipe_data.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "data/fortunes.h"
#include "data/jsonl_corpus.h"
#include "data/tensor_corpus.h"

namespace tda {

absl::StatusOr<Dataset> LoadRecipeData(const ModelConfig& config, const TrainRecipe& recipe,
                                       Split split, std::string data_dir, int64_t* truncated,
                                       bool allow_changed_corpus) {
  const bool documents = config.is_sequence();
  if (data_dir.empty()) data_dir = recipe.data_dir;
  if (data_dir.empty()) data_dir = documents ? kFortunesDefaultDir : kFashionMnistDefaultDir;
  const int64_t limit = split == Split::kTrain ? recipe.train_size : 0;
  if (recipe.dataset == kTensorsDataset) {
    ASSIGN_OR_RETURN(TensorCorpusFiles files, ParseTensorCorpusSpec(data_dir));
    return LoadTensorCorpus(files, split, limit, recipe.held_out_fraction);
  }
  if (!documents) return LoadFashionMnist(data_dir, split, limit);
  TextSplitOptions options;
  options.context_length = config.context_length;
  options.limit = limit;
  options.held_out_fraction = recipe.held_out_fraction;
  options.chunk_stride = recipe.chunk_stride;
  if (recipe.dataset != "jsonl") return LoadFortunes(data_dir, split, options, truncated);

  JsonlOptions jsonl = recipe.jsonl;
  jsonl.paths = absl::StrSplit(data_dir, ',', absl::SkipEmpty());
  if (!recipe.corpus_hash.empty() && !allow_changed_corpus) {
    ASSIGN_OR_RETURN(std::string hash, JsonlCorpusHash(jsonl.paths));
    if (hash != recipe.corpus_hash) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the corpus ", data_dir, " has changed since the model was trained (content hash ",
          hash, ", trained on ", recipe.corpus_hash,
          "): its rows would not be the ones the model saw. Retrain, restore the files, or "
          "pass --allow-changed-corpus"));
    }
  }
  return LoadJsonl(jsonl, split, options, truncated);
}

}  // namespace tda
