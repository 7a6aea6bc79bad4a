#include "test_support.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>

#include "common/atomic_file.h"
#include "curvature/ekfac.h"
#include "curvature/factor_fitting.h"
#include "data/fashion_mnist.h"
#include "data/fortunes.h"
#include "grad/per_sample_gradients.h"
#include "index/index_builder.h"
#include "model/recipe_data.h"
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

std::string ReadText(const std::string& path) {
  std::string contents;
  const absl::Status status = ReadFile(path, &contents);
  EXPECT_TRUE(status.ok()) << status;
  return contents;
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  EXPECT_TRUE(out.good()) << "cannot write " << path;
}

std::unique_ptr<Attributor> IndexWithRecipe(const Model& model, const TrainRecipe& recipe,
                                            const std::string& dir, const std::string& name) {
  IndexBuildOptions options;
  options.model_dir = dir + "/" + name + "-model";
  options.out_dir = dir + "/" + name + "-index";
  options.projection_dim_per_side = 8;
  if (absl::Status s = model.Save(options.model_dir, recipe); !s.ok()) {
    ADD_FAILURE() << s;
    return nullptr;
  }
  absl::StatusOr<Dataset> rows = LoadRecipeData(model.config(), recipe, Split::kTrain);
  if (!rows.ok()) {
    ADD_FAILURE() << rows.status();
    return nullptr;
  }
  if (absl::Status s = BuildIndex(*rows, recipe.data_dir, options); !s.ok()) {
    ADD_FAILURE() << s;
    return nullptr;
  }
  absl::StatusOr<std::unique_ptr<Attributor>> attributor = Attributor::Open(options.out_dir);
  if (!attributor.ok()) {
    ADD_FAILURE() << attributor.status();
    return nullptr;
  }
  return *std::move(attributor);
}

double HitRecall(const std::vector<Hit>& found, const std::vector<Hit>& exact) {
  if (exact.empty()) return 1.0;
  int64_t hits = 0;
  for (const Hit& e : exact) {
    for (const Hit& f : found) hits += f.row == e.row ? 1 : 0;
  }
  return static_cast<double>(hits) / static_cast<double>(exact.size());
}

void ExpectSameIndexFiles(const std::string& a, const std::string& b) {
  int compared = 0;
  for (const auto& entry : std::filesystem::directory_iterator(a)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_regular_file() || name.rfind("manifest", 0) == 0) continue;
    EXPECT_EQ(ReadText(entry.path().string()), ReadText(b + "/" + name)) << name << " differs";
    ++compared;
  }
  EXPECT_GE(compared, 3) << "gradient shards, factors and the sample table";
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

const Dataset& FortunesTrain(int64_t n, int64_t context) {
  static std::mutex mu;
  static std::map<std::pair<int64_t, int64_t>, Dataset> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto key = std::make_pair(n, context);
  auto it = cache.find(key);
  if (it == cache.end()) {
    TextSplitOptions options;
    options.context_length = context;
    options.limit = n;
    absl::StatusOr<Dataset> data = LoadFortunes(kFortunesDefaultDir, Split::kTrain, options);
    if (!data.ok()) {
      ADD_FAILURE() << data.status();
      std::abort();
    }
    it = cache.emplace(key, std::move(*data)).first;
  }
  return it->second;
}

void WritePlantedCorpus(const std::string& dir) {
  std::filesystem::create_directories(dir);
  for (const char* category : {"startrek", "law"}) {
    std::filesystem::copy_file(std::string(kFortunesDefaultDir) + "/" + category,
                               dir + "/" + category);
  }
  std::ofstream planted(dir + "/planted");
  for (int i = 0; i < kPlantedCopies; ++i) planted << kPlantedDocument << "%\n";
  std::ofstream oddity(dir + "/oddity");  // one unusual document, seen once
  oddity << kOddDocument << "%\n";
}

std::unique_ptr<Model> TrainTinyGpt(const ModelConfig& config, const Dataset& docs, int64_t epochs,
                                    uint64_t seed, TrainRecipe* recipe_out,
                                    TrainReport* report_out) {
  InitCompute();
  TrainRecipe recipe = FortunesAdamWRecipe();
  recipe.warmup_steps = 5;
  recipe.epochs = epochs;
  recipe.batch_size = 16;
  recipe.seed = seed;
  recipe.data_dir = kFortunesDefaultDir;
  absl::StatusOr<std::unique_ptr<Model>> model = CreateModel(config, seed);
  if (!model.ok()) {
    ADD_FAILURE() << model.status();
    return nullptr;
  }
  absl::StatusOr<TrainReport> report = Train(**model, docs, recipe);
  if (!report.ok()) {
    ADD_FAILURE() << report.status();
    return nullptr;
  }
  if (recipe_out != nullptr) *recipe_out = recipe;
  if (report_out != nullptr) *report_out = *report;
  return std::move(*model);
}

std::unique_ptr<Model> TrainTinyModel(const TinyModelSpec& spec, TrainRecipe* recipe_out) {
  InitCompute();
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

InMemoryEkfacScorer::InMemoryEkfacScorer(const Model& model, const Dataset& train)
    : model_(model), train_gradients_(model.layout().total(), train.size()) {
  for (int64_t begin = 0; begin < train.size(); begin += 256) {
    const int64_t end = std::min(train.size(), begin + 256);
    absl::StatusOr<BatchCapture> capture = model.Capture(train.Rows(begin, end));
    if (!capture.ok()) {
      ADD_FAILURE() << capture.status();
      return;
    }
    train_gradients_.middleCols(begin, end - begin) =
        PerSampleGradientColumns(*capture, model.layout());
  }
  absl::StatusOr<KroneckerFactors> factors = FitKroneckerFactors(model, train, FitOptions{});
  if (!factors.ok()) {
    ADD_FAILURE() << factors.status();
    return;
  }
  absl::StatusOr<std::unique_ptr<KroneckerPreconditioner>> p = KroneckerPreconditioner::Create(
      std::make_shared<const KroneckerFactors>(std::move(*factors)), Method::kEkfac, Damping{});
  if (!p.ok()) {
    ADD_FAILURE() << p.status();
    return;
  }
  preconditioner_ = std::move(*p);
}

absl::StatusOr<Eigen::MatrixXf> InMemoryEkfacScorer::Score(const Batch& queries) const {
  if (preconditioner_ == nullptr) return absl::FailedPreconditionError("scorer failed to build");
  absl::StatusOr<BatchCapture> capture = model_.Capture(queries);
  if (!capture.ok()) return capture.status();
  absl::StatusOr<Eigen::MatrixXd> preconditioned =
      preconditioner_->Apply(PerSampleGradientColumns(*capture, model_.layout()));
  if (!preconditioned.ok()) return preconditioned.status();
  return (train_gradients_.transpose() * *preconditioned).cast<float>();
}

}  // namespace tda::testing
