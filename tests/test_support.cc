#include "test_support.h"

#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>

#include "data/fashion_mnist.h"
#include "model/trainer.h"

namespace tda::testing {

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "tda-test-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) std::abort();
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

namespace {

Dataset Head(const Dataset& full, int64_t n) {
  Dataset out = full;
  n = std::min(n, full.size());
  out.features.resize(static_cast<size_t>(n * full.feature_dim));
  out.labels.resize(static_cast<size_t>(n));
  out.ids.resize(static_cast<size_t>(n));
  out.sources.resize(static_cast<size_t>(n));
  return out;
}

const Dataset& Cached(Split split, int64_t n) {
  static std::mutex mu;
  static std::map<std::pair<int, int64_t>, Dataset> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto key = std::make_pair(static_cast<int>(split), n);
  auto it = cache.find(key);
  if (it == cache.end()) {
    absl::StatusOr<Dataset> data = LoadFashionMnist(kFashionMnistDefaultDir, split, n);
    if (!data.ok()) {
      ADD_FAILURE() << data.status();
      std::abort();
    }
    it = cache.emplace(key, Head(*data, n)).first;
  }
  return it->second;
}

}  // namespace

const Dataset& FashionTrain(int64_t n) { return Cached(Split::kTrain, n); }
const Dataset& FashionTest(int64_t n) { return Cached(Split::kTest, n); }

Dataset Downsample(const Dataset& data, int64_t side) {
  Dataset out = data;
  const int64_t factor = 28 / side;
  out.feature_dim = side * side;
  out.features.assign(static_cast<size_t>(data.size() * side * side), 0.0f);
  for (int64_t i = 0; i < data.size(); ++i) {
    for (int64_t r = 0; r < side * factor; ++r) {
      for (int64_t c = 0; c < side * factor; ++c) {
        out.features[i * side * side + (r / factor) * side + c / factor] +=
            data.row(i)[r * 28 + c] / static_cast<float>(factor * factor);
      }
    }
  }
  return out;
}

std::unique_ptr<Model> TrainTinyModel(const TinyModelSpec& spec, TrainRecipe* recipe_out) {
  InitComputeThreads();
  Dataset train = FashionTrain(spec.train_size);
  if (spec.input_side > 0) train = Downsample(train, spec.input_side);
  ModelConfig config;
  config.input_dim = train.feature_dim;
  config.hidden = spec.hidden;
  TrainRecipe recipe;
  recipe.epochs = spec.epochs;
  recipe.batch_size = 64;
  recipe.weight_decay = spec.weight_decay;
  recipe.seed = spec.seed;
  recipe.train_size = spec.train_size;
  recipe.data_dir = kFashionMnistDefaultDir;
  absl::StatusOr<std::unique_ptr<Model>> model = CreateModel(config, spec.seed);
  if (!model.ok()) {
    ADD_FAILURE() << model.status();
    return nullptr;
  }
  absl::StatusOr<TrainReport> report = Train(**model, train, recipe);
  if (!report.ok()) {
    ADD_FAILURE() << report.status();
    return nullptr;
  }
  if (recipe_out != nullptr) *recipe_out = recipe;
  return std::move(*model);
}

}  // namespace tda::testing
