// Shared test helpers: status matchers (abseil 20220623 has no StatusIs), real Fashion-MNIST
// subsets, and small models trained on them. Everything is real data; nothing is mocked.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "attribution/attributor.h"
#include "curvature/preconditioner.h"
#include "data/dataset.h"
#include "model/model.h"
#include "model/trainer.h"

// Lets GoogleTest print a StatusOr (its status) in failure messages.
namespace absl {
inline namespace debian3 {
template <typename T>
void PrintTo(const StatusOr<T>& s, std::ostream* os) {
  *os << s.status();
}
}  // namespace debian3
}  // namespace absl

namespace tda::testing {

inline const absl::Status& internal_status(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& internal_status(const absl::StatusOr<T>& s) {
  return s.status();
}

// EXPECT_THAT(status, StatusIs(absl::StatusCode::kDataLoss, HasSubstr("shard")));
MATCHER_P2(StatusIs, code, message_matcher,
           "has code " + absl::StatusCodeToString(code) + " and a message that " +
               ::testing::DescribeMatcher<std::string>(message_matcher)) {
  const absl::Status& status = internal_status(arg);
  if (status.code() != code) {
    *result_listener << "code is " << absl::StatusCodeToString(status.code()) << ": "
                     << status.message();
    return false;
  }
  return ::testing::ExplainMatchResult(message_matcher, std::string(status.message()),
                                       result_listener);
}


#define TDA_ASSERT_OK(expr)                                           \
  do {                                                                \
    const auto& tda_s_ = (expr);                                      \
    ASSERT_TRUE(::tda::testing::internal_status(tda_s_).ok())         \
        << ::tda::testing::internal_status(tda_s_).ToString();        \
  } while (0)

// A fresh temporary directory, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A whole file's bytes (a test failure, and "", when it cannot be read).
std::string ReadText(const std::string& path);
// Writes `text` to `path`, replacing it (a test failure when it cannot).
void WriteText(const std::string& path, const std::string& text);

// `model` saved with `recipe` as DIR/NAME-model and indexed (8 per side) from the rows the
// recipe names (LoadRecipeData) into DIR/NAME-index, opened; nullptr after a test failure.
// For tests that one corpus in two forms gives the same index.
std::unique_ptr<Attributor> IndexWithRecipe(const Model& model, const TrainRecipe& recipe,
                                            const std::string& dir, const std::string& name);
// Every file of index directory `a` equals the same file of `b`, except the manifest (which
// names the data); at least the shards, the factors and the sample table are compared.
void ExpectSameIndexFiles(const std::string& a, const std::string& b);

// Share of the rows of `exact` that are also in `found` (1 when `exact` is empty): the recall of
// an approximate top-k (ANN, low-rank queries) against the exact one.
double HitRecall(const std::vector<Hit>& found, const std::vector<Hit>& exact);

// First `n` samples of the real Fashion-MNIST split (cached per process).
const Dataset& FashionTrain(int64_t n);
const Dataset& FashionTest(int64_t n);

// A model trained for real on the first `train_size` Fashion-MNIST training images.
struct TinyModelSpec {
  std::vector<int64_t> hidden = {16};
  int64_t train_size = 1000;
  int64_t epochs = 3;
  double weight_decay = 0.0;
  uint64_t seed = 0;
  // Optional downsampling of the 28x28 input to side x side (0 = no downsampling), so exact
  // curvature matrices stay small.
  int64_t input_side = 0;
};
std::unique_ptr<Model> TrainTinyModel(const TinyModelSpec& spec, TrainRecipe* recipe_out = nullptr);

// Downsamples 28x28 Fashion-MNIST images to side x side by area averaging.
Dataset Downsample(const Dataset& data, int64_t side);

// The first `n` training documents of the real fortunes corpus (held-out fraction 0.05, split
// seed 0) as rows of `context` tokens (cached per process).
const Dataset& FortunesTrain(int64_t n, int64_t context);

// A gpt of `config` trained for real (AdamW, warmup + cosine, clipping) on all of `docs`.
// `report_out` (optional) receives the training report (with AdamW's second moment).
std::unique_ptr<Model> TrainTinyGpt(const ModelConfig& config, const Dataset& docs, int64_t epochs,
                                    uint64_t seed = 0, TrainRecipe* recipe_out = nullptr,
                                    TrainReport* report_out = nullptr);

// The planted-document corpus (tests/gpt_attribution_test.cc): the startrek and law fortunes,
// kPlantedCopies copies of kPlantedDocument and one kOddDocument, written under `dir`.
inline constexpr char kPlantedDocument[] =
    "The quantum hamster Zorblax juggles seventeen violet teapots every Thursday at dawn.\n";
inline constexpr int kPlantedCopies = 6;
inline constexpr char kOddDocument[] =
    "QQ 7x9 ZZKV !! wq#4 jjjj 0x1F ~~ XKCD-Zed vv$$ 88 qqqq ZZZ\n";
void WritePlantedCorpus(const std::string& dir);

// EK-FAC influence without an index, for models small enough to hold every training
// gradient in memory: factors fitted on `train` (true Fisher, default damping), full
// per-sample gradients; Score(queries) = N x Q scores in tda's sign convention. Immutable.
class InMemoryEkfacScorer {
 public:
  InMemoryEkfacScorer(const Model& model, const Dataset& train);
  absl::StatusOr<Eigen::MatrixXf> Score(const Batch& queries) const;
  // As a TrainingScoreFn (removal_ablation.h); this scorer must outlive it.
  std::function<absl::StatusOr<Eigen::MatrixXf>(const Batch&)> AsFunction() const {
    return [this](const Batch& queries) { return Score(queries); };
  }

 private:
  const Model& model_;
  Eigen::MatrixXd train_gradients_;  // D x N
  std::unique_ptr<Preconditioner> preconditioner_;
};

}  // namespace tda::testing
