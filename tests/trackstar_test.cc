// TrackStar's options (Chang et al. 2024) against their definitions, on a small MLP trained for
// real with Adam on Fashion-MNIST: the optimizer state saved with the model reloads bit for
// bit; unit normalisation (attribution/unit_norm.h) and the Adam correction
// (grad/adam_correction.h) give the scores computed directly from the per-sample gradients;
// the rank-1 correction of a projected index is its definition (sides scaled, then projected),
// and its error against the exact correction is printed.
#include <cmath>
#include <cstring>
#include <fstream>

#include "ablation/lds.h"
#include "ablation/method_scores.h"
#include "attribution/query_validation.h"
#include "curvature/ekfac.h"
#include "data/fortunes.h"
#include "grad/per_sample_gradients.h"
#include "grad/projection.h"
#include "index/index_builder.h"
#include "model/optimizer_state.h"
#include "model/trainer.h"
#include "test_support.h"

namespace tda {
namespace {

using ::testing::HasSubstr;
using testing::StatusIs;

constexpr int64_t kTrainRows = 512;
constexpr int64_t kQueries = 6;

// One Adam-trained MLP on 14 x 14 Fashion-MNIST, its saved directory and three indexes of it.
struct Fixture {
  testing::TempDir dir;
  Dataset train, test;
  TrainRecipe recipe;
  TrainReport report;
  std::unique_ptr<Model> model;
  std::string model_dir;
  std::unique_ptr<Attributor> plain, exact, rank1;  // dim 0; dim 0 corrected; dim 8 corrected
  Eigen::MatrixXd train_grads, query_grads;         // full per-sample gradients, D x N / D x Q
};

std::unique_ptr<Attributor> Build(Fixture& f, const std::string& name, int64_t dim, bool adam) {
  IndexBuildOptions options;
  options.model_dir = f.model_dir;
  options.out_dir = f.dir.file(name);
  options.projection_dim_per_side = dim;
  options.adam_correction = adam;
  if (absl::Status s = BuildIndex(f.train, kFashionMnistDefaultDir, options); !s.ok()) {
    ADD_FAILURE() << s;
    return nullptr;
  }
  absl::StatusOr<std::unique_ptr<Attributor>> opened = Attributor::Open(options.out_dir);
  if (!opened.ok()) ADD_FAILURE() << opened.status();
  return opened.ok() ? std::move(*opened) : nullptr;
}

// Trains on the first `rows` (14 x 14) training images with Adam and builds the three indexes.
Fixture* MakeFixture(int64_t rows, int64_t epochs, double weight_decay) {
  InitCompute(1);
  auto* f = new Fixture;
  f->train = testing::Downsample(testing::FashionTrain(rows), 14);
  f->test = testing::Downsample(testing::FashionTest(kQueries), 14);
  ModelConfig config;
  config.input_dim = f->train.feature_dim;
  config.hidden = {16};
  f->recipe.optimizer = "adam";
  f->recipe.epochs = epochs;
  f->recipe.batch_size = 64;
  f->recipe.weight_decay = weight_decay;
  f->recipe.data_dir = kFashionMnistDefaultDir;
  f->model = *CreateModel(config, 0);
  absl::StatusOr<TrainReport> report = Train(*f->model, f->train, f->recipe);
  EXPECT_TRUE(report.ok()) << report.status();
  f->report = *report;
  f->model_dir = f->dir.file("model");
  EXPECT_TRUE(SaveTrainedModel(*f->model, f->model_dir, f->recipe, f->report).ok());
  f->plain = Build(*f, "plain", 0, false);
  f->exact = Build(*f, "exact", 0, true);
  f->rank1 = Build(*f, "rank1", 8, true);
  f->train_grads =
      PerSampleGradientColumns(*f->model->Capture(f->train.Rows(0, rows)), f->model->layout());
  f->query_grads =
      PerSampleGradientColumns(*f->model->Capture(f->test.Rows(0, kQueries)), f->model->layout());
  return f;
}

Fixture& Shared() {
  static Fixture* f = MakeFixture(kTrainRows, 2, 0.0);
  return *f;
}

// M = 1 / (sqrt(v / (1 - beta2^t)) + eps), written out from the definition.
Eigen::VectorXd DirectMultiplier(const OptimizerState& s) {
  Eigen::VectorXd m(s.exp_avg_sq.size());
  for (Eigen::Index i = 0; i < m.size(); ++i) {
    const double v_hat = s.exp_avg_sq[i] / (1.0 - std::pow(s.beta2, static_cast<double>(s.step)));
    m[i] = 1.0 / (std::sqrt(v_hat) + s.eps);
  }
  return m;
}

// Columns divided by their norms.
Eigen::MatrixXd Normalised(Eigen::MatrixXd m) {
  for (Eigen::Index c = 0; c < m.cols(); ++c) m.col(c) /= m.col(c).norm();
  return m;
}

// max |a - b| / max |b|
double RelativeGap(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  return (a - b).cwiseAbs().maxCoeff() / b.cwiseAbs().maxCoeff();
}

Eigen::MatrixXd Scores(const Attributor& attributor, Method method, bool unit_norm, bool adam) {
  AttributeOptions options;
  options.method = method;
  options.unit_norm = unit_norm;
  options.adam_correction = adam;
  absl::StatusOr<Eigen::MatrixXf> scores =
      attributor.ScoreBatch(Shared().test.Rows(0, kQueries), options);
  EXPECT_TRUE(scores.ok()) << scores.status();
  return scores.ok() ? Eigen::MatrixXd(scores->cast<double>()) : Eigen::MatrixXd();
}

TEST(TrackStar, OptimizerStateReloadsBitIdenticalAndIsOptional) {
  Fixture& f = Shared();
  ASSERT_TRUE(f.report.optimizer_state.has_value());
  const OptimizerState& trained = *f.report.optimizer_state;
  EXPECT_EQ(trained.step, 2 * kTrainRows / 64);
  EXPECT_EQ(trained.beta2, 0.999);
  EXPECT_GT(trained.exp_avg_sq.maxCoeff(), 0.0f);
  absl::StatusOr<OptimizerState> loaded = LoadOptimizerState(f.model_dir, *f.model);
  TDA_ASSERT_OK(loaded);
  EXPECT_EQ(loaded->optimizer, "adam");
  EXPECT_EQ(loaded->step, trained.step);
  EXPECT_EQ(loaded->eps, trained.eps);
  ASSERT_EQ(loaded->exp_avg_sq.size(), trained.exp_avg_sq.size());
  EXPECT_EQ(std::memcmp(loaded->exp_avg_sq.data(), trained.exp_avg_sq.data(),
                        sizeof(float) * trained.exp_avg_sq.size()),
            0);

  // One flipped byte of the state is found.
  testing::TempDir dir;
  const std::string copy = dir.file("model");
  TDA_ASSERT_OK(SaveTrainedModel(*f.model, copy, f.recipe, f.report));
  std::string bytes = testing::ReadText(copy + "/" + kOptimizerStateFile);
  bytes[bytes.size() - 3] ^= 0x40;
  testing::WriteText(copy + "/" + kOptimizerStateFile, bytes);
  EXPECT_THAT(LoadOptimizerState(copy, *f.model),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("checksum")));

  // SGD into the same directory: no state (the old one goes), the model loads as before, and
  // an Adam-corrected build says what is missing and what to do.
  TrainRecipe sgd = f.recipe;
  sgd.optimizer = "sgd";
  std::unique_ptr<Model> model = *CreateModel(f.model->config(), 1);
  absl::StatusOr<TrainReport> report = Train(*model, f.train, sgd);
  TDA_ASSERT_OK(report);
  EXPECT_FALSE(report->optimizer_state.has_value());
  TDA_ASSERT_OK(SaveTrainedModel(*model, copy, sgd, *report));
  TDA_ASSERT_OK(LoadModel(copy));
  IndexBuildOptions options;
  options.model_dir = copy;
  options.out_dir = dir.file("index");
  options.adam_correction = true;
  EXPECT_THAT(BuildIndex(f.train, kFashionMnistDefaultDir, options),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       ::testing::AllOf(HasSubstr(copy), HasSubstr("--optimizer adam"))));
}

TEST(TrackStar, UnitNormIsTheNormalisedScoreThroughTheSamePreconditioner) {
  Fixture& f = Shared();
  ASSERT_NE(f.plain, nullptr);
  const Eigen::MatrixXd train = f.train_grads, queries = f.query_grads;
  Eigen::VectorXd inverse_norms = train.colwise().norm().cwiseInverse().transpose();
  // Gradient-dot: the cosine.
  const Eigen::MatrixXd cosine =
      inverse_norms.asDiagonal() * (train.transpose() * Normalised(queries));
  const Eigen::MatrixXd unit_dot = Scores(*f.plain, Method::kGradientDot, true, false);
  EXPECT_LT(RelativeGap(unit_dot, cosine), 1e-4);
  EXPECT_LE(unit_dot.cwiseAbs().maxCoeff(), 1.0 + 1e-5);
  EXPECT_GT(RelativeGap(Scores(*f.plain, Method::kGradientDot, false, false), cosine), 0.5);
  // EK-FAC: the normalised query through the index's own factors.
  auto factors = std::make_shared<const KroneckerFactors>(
      *LoadFactors(f.dir.file("plain") + "/factors.safetensors"));
  std::unique_ptr<KroneckerPreconditioner> ekfac =
      *KroneckerPreconditioner::Create(factors, Method::kEkfac, Damping{});
  const Eigen::MatrixXd direct =
      inverse_norms.asDiagonal() * (train.transpose() * *ekfac->Apply(Normalised(queries)));
  EXPECT_LT(RelativeGap(Scores(*f.plain, Method::kEkfac, true, false), direct), 1e-4);
  // The evaluations' scores (tda eval lds --unit-norm) are the same definition.
  MethodSettings settings;
  settings.unit_norm = true;
  absl::StatusOr<MethodScores> evaluated = ComputeMethodScores(
      Method::kGradientDot, *f.model, f.train, f.test.Select({0, 1, 2, 3, 4, 5}), settings);
  TDA_ASSERT_OK(evaluated);
  EXPECT_LT(RelativeGap(evaluated->scores, cosine), 1e-9);

  // Refused where it cannot be honoured.
  AttributeOptions approximate;
  approximate.unit_norm = true;
  approximate.approximate.enabled = true;
  Query query;
  query.features.assign(f.test.row(0), f.test.row(0) + f.test.feature_dim);
  query.label = 0;
  EXPECT_THAT(ValidateAttributeRequest({query}, approximate),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unit_norm")));
  AttributeOptions corrected;
  corrected.adam_correction = true;
  EXPECT_THAT(f.plain->Attribute({query}, corrected),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--adam-correction")));
}

TEST(TrackStar, ExactAdamCorrectionIsTheElementwiseDivide) {
  Fixture& f = Shared();
  ASSERT_NE(f.exact, nullptr);
  const Eigen::VectorXd m = DirectMultiplier(*f.report.optimizer_state);
  const Eigen::MatrixXd train = m.asDiagonal() * f.train_grads;
  const Eigen::MatrixXd queries = m.asDiagonal() * f.query_grads;
  // The stored rows are the corrected gradients.
  std::vector<float> row(static_cast<size_t>(train.rows()));
  ASSERT_TRUE(f.exact->index().CopyRow(7, row.data()));
  const Eigen::VectorXd stored = Eigen::Map<Eigen::VectorXf>(row.data(), row.size()).cast<double>();
  EXPECT_LT((stored - train.col(7)).cwiseAbs().maxCoeff() / train.col(7).cwiseAbs().maxCoeff(),
            1e-5);
  EXPECT_LT(
      RelativeGap(Scores(*f.exact, Method::kGradientDot, false, true), train.transpose() * queries),
      1e-4);
  // Both options: TrackStar's cosine of corrected gradients.
  const Eigen::VectorXd inverse_norms = train.colwise().norm().cwiseInverse().transpose();
  EXPECT_LT(RelativeGap(Scores(*f.exact, Method::kGradientDot, true, true),
                        inverse_norms.asDiagonal() * (train.transpose() * Normalised(queries))),
            1e-4);
  // Without the query-side correction: raw queries against corrected rows.
  EXPECT_LT(RelativeGap(Scores(*f.exact, Method::kGradientDot, false, false),
                        train.transpose() * f.query_grads),
            1e-4);
}

TEST(TrackStar, RankOneCorrectionScalesTheSidesBeforeProjecting) {
  Fixture& f = Shared();
  ASSERT_NE(f.rank1, nullptr);
  const ParamLayout& layout = f.model->layout();
  const Eigen::VectorXd m = DirectMultiplier(*f.report.optimizer_state);
  // The definition: per layer R = row sums of v_hat, C = column sums / total, r = 1 / (sqrt(R) +
  // sqrt(eps)), c likewise; sides scaled, then the index's plain projection.
  const OptimizerState& state = *f.report.optimizer_state;
  Eigen::VectorXd v_hat(m.size());
  for (Eigen::Index i = 0; i < m.size(); ++i) {
    v_hat[i] = state.exp_avg_sq[i] / (1.0 - std::pow(state.beta2, static_cast<double>(state.step)));
  }
  BatchCapture capture = *f.model->Capture(f.train.Rows(0, 64));
  Eigen::VectorXd factorised(m.size());
  for (size_t l = 0; l < layout.layers.size(); ++l) {
    const TrackedLayer& layer = layout.layers[l];
    Eigen::Map<const RowMatrixXd> vl(v_hat.data() + layer.offset, layer.out, layer.cols());
    Eigen::VectorXd r = vl.rowwise().sum();
    Eigen::VectorXd c = vl.colwise().sum().transpose() / vl.sum();
    for (double& x : r) x = 1.0 / (std::sqrt(x) + std::sqrt(state.eps));
    for (double& x : c) x = 1.0 / (std::sqrt(x) + std::sqrt(state.eps));
    Eigen::Map<RowMatrixXd>(factorised.data() + layer.offset, layer.out, layer.cols()) =
        r * c.transpose();
    capture.layers[l].g = capture.layers[l].g * r.cast<float>().asDiagonal();
    capture.layers[l].a = capture.layers[l].a * c.cast<float>().asDiagonal();
  }
  const RowMatrixXf expected = Projection(layout, 8, 0).ProjectCapture(capture);
  std::vector<float> row(static_cast<size_t>(expected.cols()));
  double gap = 0;
  for (int64_t i = 0; i < expected.rows(); ++i) {
    ASSERT_TRUE(f.rank1->index().CopyRow(i, row.data()));
    for (int64_t k = 0; k < expected.cols(); ++k) {
      gap = std::max(gap, std::abs(static_cast<double>(row[k]) - expected(i, k)));
    }
  }
  EXPECT_LT(gap, 1e-6 * expected.cwiseAbs().maxCoeff());

  // How close the factorised correction is to the exact one, on the real gradients.
  const Eigen::MatrixXd exact = m.asDiagonal() * f.train_grads;
  const Eigen::MatrixXd approx = factorised.asDiagonal() * f.train_grads;
  const double gradient_error = (approx - exact).norm() / exact.norm();
  const Eigen::MatrixXd exact_scores = exact.transpose() * (m.asDiagonal() * f.query_grads);
  const Eigen::MatrixXd approx_scores =
      approx.transpose() * (factorised.asDiagonal() * f.query_grads);
  const double score_error = (approx_scores - exact_scores).norm() / exact_scores.norm();
  std::cout << "rank-1 Adam correction vs exact (" << kTrainRows << " training gradients, "
            << kQueries << " queries): gradients " << gradient_error << ", gradient-dot scores "
            << score_error << " relative error\n";
  EXPECT_LT(gradient_error, 1.0);
}

// The measurement of README "TrackStar options" (label long): LDS of 50 half-size retrainings
// with and without each option, README "Accuracy"'s MLP setup (1000 images, Adam, 40 epochs,
// L2 0.001), 20 test queries.
TEST(TrackStar, LdsWithAndWithoutEachOption) {
  std::unique_ptr<Fixture> owned(MakeFixture(1000, 40, 1e-3));
  Fixture& f = *owned;
  ASSERT_NE(f.rank1, nullptr);
  std::unique_ptr<Attributor> projected = Build(f, "projected", 8, false);
  ASSERT_NE(projected, nullptr);
  const Dataset queries = testing::Downsample(testing::FashionTest(20), 14);
  LdsOptions lds;
  lds.subsets = 50;
  absl::StatusOr<LdsRetraining> retraining =
      RetrainOnSubsets(f.model->config(), f.recipe, f.train, queries, lds);
  TDA_ASSERT_OK(retraining);
  struct Config {
    const char* name;
    const Attributor* index;
    bool adam;
  };
  const std::vector<Config> configs = {{"dim 0", f.plain.get(), false},
                                       {"dim 0, adam exact", f.exact.get(), true},
                                       {"dim 8", projected.get(), false},
                                       {"dim 8, adam rank1", f.rank1.get(), true}};
  std::printf("LDS (%lld train, %lld subsets, %lld queries)   plain   unit-norm\n",
              static_cast<long long>(f.train.size()), static_cast<long long>(lds.subsets),
              static_cast<long long>(queries.size()));
  for (Method method : {Method::kGradientDot, Method::kEkfac}) {
    for (const Config& config : configs) {
      double lds_of[2] = {0, 0};
      for (int unit = 0; unit < 2; ++unit) {
        AttributeOptions options;
        options.method = method;
        options.unit_norm = unit == 1;
        options.adam_correction = config.adam;
        absl::StatusOr<Eigen::MatrixXf> scores =
            config.index->ScoreBatch(queries.Rows(0, queries.size()), options);
        TDA_ASSERT_OK(scores);
        absl::StatusOr<LdsScore> score =
            LinearDatamodelingScore(*retraining, scores->cast<double>());
        TDA_ASSERT_OK(score);
        lds_of[unit] = score->mean;
        EXPECT_TRUE(std::isfinite(score->mean));
      }
      std::printf("  %-13s %-20s %7.4f %9.4f\n", MethodName(method), config.name, lds_of[0],
                  lds_of[1]);
      // Every configuration still predicts retraining better than chance.
      EXPECT_GT(lds_of[0], 0.0) << MethodName(method) << " " << config.name;
    }
  }
}

// The planted-document test's corpus and GPT (tests/gpt_attribution_test.cc; label long): where
// the planted copies rank for a completion quoted from them, with and without each option.
TEST(TrackStar, PlantedDocumentRanksWithAndWithoutEachOption) {
  testing::TempDir dir;
  const std::string corpus = dir.file("fortunes");
  testing::WritePlantedCorpus(corpus);
  TextSplitOptions data_options;
  data_options.context_length = 96;
  absl::StatusOr<Dataset> train = LoadFortunes(corpus, Split::kTrain, data_options);
  TDA_ASSERT_OK(train);
  const ModelConfig config = GptConfig(96, 32, 1, 2, 64, /*tied_head=*/false);
  TrainRecipe recipe;
  TrainReport report;
  std::unique_ptr<Model> model = testing::TrainTinyGpt(config, *train, 6, 0, &recipe, &report);
  ASSERT_NE(model, nullptr);
  recipe.data_dir = corpus;
  TDA_ASSERT_OK(SaveTrainedModel(*model, dir.file("model"), recipe, report));
  std::unique_ptr<Attributor> indexes[2];
  for (int adam = 0; adam < 2; ++adam) {
    IndexBuildOptions options;
    options.model_dir = dir.file("model");
    options.out_dir = dir.file(adam ? "adam" : "plain");
    options.projection_dim_per_side = 16;
    options.adam_correction = adam == 1;
    TDA_ASSERT_OK(BuildIndex(*train, corpus, options));
    absl::StatusOr<std::unique_ptr<Attributor>> opened = Attributor::Open(options.out_dir);
    TDA_ASSERT_OK(opened);
    indexes[adam] = std::move(*opened);
  }
  const std::string text = testing::kPlantedDocument;
  Query query;
  query.text = TextQuery{text.substr(0, 30), text.substr(30, 40)};
  int64_t planted = 0;
  for (const std::string& source : train->sources) planted += source == "planted";
  std::printf("planted copies (%lld of %lld documents): best rank (0 = top), copies in top 10\n",
              static_cast<long long>(planted), static_cast<long long>(train->size()));
  for (Method method : {Method::kEkfac, Method::kGradientDot}) {
    for (int adam = 0; adam < 2; ++adam) {
      for (int unit = 0; unit < 2; ++unit) {
        AttributeOptions options;
        options.method = method;
        options.unit_norm = unit == 1;
        options.adam_correction = adam == 1;
        options.return_scores = true;
        absl::StatusOr<std::vector<QueryResult>> results =
            indexes[adam]->Attribute({query}, options);
        TDA_ASSERT_OK(results);
        const std::vector<float>& scores = (*results)[0].scores;
        int64_t best = static_cast<int64_t>(scores.size()), in_top10 = 0;
        for (size_t r = 0; r < scores.size(); ++r) {
          if (train->sources[r] != "planted") continue;
          int64_t rank = 0;
          for (float s : scores) rank += s > scores[r];
          best = std::min(best, rank);
          in_top10 += rank < 10;
        }
        std::printf("  %-13s %-10s %-10s best %3lld  top-10 %lld\n", MethodName(method),
                    adam ? "adam-rank1" : "-", unit ? "unit-norm" : "-",
                    static_cast<long long>(best), static_cast<long long>(in_top10));
        EXPECT_LT(best, 10) << MethodName(method) << " adam " << adam << " unit " << unit;
      }
    }
  }
}

}  // namespace
}  // namespace tda
