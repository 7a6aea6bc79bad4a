// The samples behind an index, found from its model's saved recipe alone
// (LoadSharedRecipeData over the data directory the index was built from),
// whatever the corpus kind: lookup of training and held-out samples by id, the
// index's rows as a data set in row order, and class names. Each split is loaded
// once, on first use, with every row (the recipe's train_size ignored, so rows
// appended to the index are found), and shared with the other indexes of the
// process over the same data. Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "data/dataset.h"
#include "index/gradient_index.h"
#include "model/model_config.h"

namespace tda {

struct SampleRef {
  const Dataset *data = nullptr;  // the split holding the sample
  int64_t row = 0;                // its row there
};

class IndexSamples {
 public:
  // `index`, `config` and `recipe` must outlive this.
  IndexSamples(const GradientIndex &index, const ModelConfig &config, const TrainRecipe &recipe);

  // The sample named `id` in the training split, else in the held-out split.
  // kInvalidArgument when neither has it; the loader's error when a split
  // cannot be read.
  [[nodiscard]] absl::StatusOr<SampleRef> Find(const std::string &id) const;

  // The index's rows in row order, each looked up by id in the training split.
  // kFailedPrecondition naming the first row that is not a training sample, or
  // saying why the training data cannot be read.
  [[nodiscard]] absl::StatusOr<const Dataset *> IndexRows() const;

  // Label -> class name, from the training split; empty for language models or
  // when the training data cannot be read.
  const std::vector<std::string> &class_names() const;

  const std::string &data_dir() const { return data_dir_; }

 private:
  struct Loaded {
    std::once_flag once;
    absl::StatusOr<std::shared_ptr<const Dataset>> data = absl::UnknownError("not loaded");
    std::map<std::string, int64_t> row_of_id;
  };
  const Loaded &Get(Split split) const;

  const GradientIndex &index_;
  const ModelConfig &config_;
  const TrainRecipe &recipe_;
  const std::string data_dir_;
  mutable Loaded splits_[2];
  mutable std::once_flag rows_once_;
  mutable absl::StatusOr<std::shared_ptr<const Dataset>> rows_ = absl::UnknownError("not loaded");
};

}  // namespace tda
