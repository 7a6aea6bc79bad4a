#include "attribution/index_samples.h"

#include "absl/strings/str_cat.h"
#include "model/recipe_data.h"

namespace tda {

IndexSamples::IndexSamples(const GradientIndex &index, const ModelConfig &config,
                           const TrainRecipe &recipe)
    : index_(index), config_(config), recipe_(recipe), data_dir_(index.manifest().data_dir) {}

const IndexSamples::Loaded &IndexSamples::Get(Split split) const {
  Loaded &loaded = splits_[split == Split::kTrain ? 0 : 1];
  std::call_once(loaded.once, [&] {
    TrainRecipe every_row = recipe_;
    every_row.train_size = 0;
    loaded.data = LoadSharedRecipeData(config_, every_row, split, data_dir_);
    if (!loaded.data.ok()) return;
    const Dataset &data = **loaded.data;
    for (int64_t i = 0; i < data.size(); ++i) loaded.row_of_id[data.ids[i]] = i;
  });
  return loaded;
}

absl::StatusOr<SampleRef> IndexSamples::Find(const std::string &id) const {
  for (Split split : {Split::kTrain, Split::kTest}) {
    const Loaded &loaded = Get(split);
    if (!loaded.data.ok()) return loaded.data.status();
    if (auto it = loaded.row_of_id.find(id); it != loaded.row_of_id.end()) {
      return SampleRef{loaded.data->get(), it->second};
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown sample id '", id,
                   "': not a training or held-out sample of the corpus in '", data_dir_, "'"));
}

absl::StatusOr<const Dataset *> IndexSamples::IndexRows() const {
  std::call_once(rows_once_, [&] {
    rows_ = [&]() -> absl::StatusOr<std::shared_ptr<const Dataset>> {
      const Loaded &train = Get(Split::kTrain);
      if (!train.data.ok()) {
        return absl::FailedPreconditionError(
            absl::StrCat("the training data the index was built from ('", data_dir_,
                         "') cannot be loaded: ", train.data.status().message()));
      }
      const Dataset &train_data = **train.data;
      std::vector<int64_t> rows;
      rows.reserve(static_cast<size_t>(index_.rows()));
      for (int64_t r = 0; r < index_.rows(); ++r) {
        const std::string &id = index_.sample(r).id;
        auto it = train.row_of_id.find(id);
        if (it == train.row_of_id.end()) {
          return absl::FailedPreconditionError(absl::StrCat(
              "index row ", r, " ('", id, "') is not a training sample of ", train_data.name, " (",
              train_data.size(), " samples in '", data_dir_, "')"));
        }
        rows.push_back(it->second);
      }
      // The usual index holds the training set in its own order: no second copy.
      bool same_order = static_cast<int64_t>(rows.size()) == train_data.size();
      for (size_t r = 0; same_order && r < rows.size(); ++r) same_order = rows[r] == static_cast<int64_t>(r);
      if (same_order) return *train.data;
      Dataset selected = train_data.Select(rows);
      selected.name = absl::StrCat(train_data.name, " (index rows)");
      return std::make_shared<const Dataset>(std::move(selected));
    }();
  });
  if (!rows_.ok()) return rows_.status();
  return rows_->get();
}

const std::vector<std::string> &IndexSamples::class_names() const {
  static const std::vector<std::string> *const kNone = new std::vector<std::string>();
  if (config_.is_sequence()) return *kNone;
  const Loaded &train = Get(Split::kTrain);
  return train.data.ok() ? (*train.data)->class_names : *kNone;
}

}  // namespace tda
