// The dattri benchmark preset of `tda eval` (ablation/eval_protocol.h, ops/eval_run.h) on
// real Fashion-MNIST, shrunk to fit the test budget; the saved retrainings
// (ablation/retrain_cache.h); the mlp's training-only dropout; and the margin measurement's
// query gradient (ablation/measurement.h) against an independent derivation.
#include "ablation/eval_protocol.h"

#include <cmath>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ablation/measurement.h"
#include "ablation/retrain_cache.h"
#include "ablation/trained_model_cache.h"
#include "common/status_macros.h"
#include "jobs/job_kinds.h"
#include "model/model.h"
#include "model/trainer.h"
#include "ops/eval_run.h"
#include "test_support.h"

namespace tda {
namespace {

using ::testing::HasSubstr;
using testing::StatusIs;
using json = nlohmann::json;

// The dattri preset (its models and recipes) at N = 500 (subsets of 250), 12 subsets, 8
// queries: small enough for the test budget.
EvalRun SmallDattriRun(const std::string& model, const std::string& cache_dir) {
  EvalRun run;
  run.experiment = "lds";
  run.protocol = "dattri";
  absl::StatusOr<EvalSetup> setup = ProtocolSetup("dattri", "lds", model);
  EXPECT_TRUE(setup.ok()) << setup.status();
  run.setup = *setup;
  run.setup.train_size = 500;
  run.setup.queries = 8;
  run.setup.lds.subsets = 12;
  run.methods = "ekfac,gradient-dot";
  run.data_path = "fashion-mnist (tests)";
  run.retrain_cache_dir = cache_dir;
  return run;
}

absl::StatusOr<json> RunSmall(const EvalRun& run) {
  const Dataset& train = testing::FashionTrain(run.setup.train_size);
  const Dataset& test = testing::FashionTest(run.setup.queries);
  ASSIGN_OR_RETURN(EvalReport report, RunEval(run, train, test));
  std::cout << report.settings << "\n";
  for (const EvalRow& row : report.rows) {
    std::cout << "  " << row.method << " " << row.value;
    if (!row.ensemble_curve.empty()) std::cout << " (members' mean " << row.members_mean << ")";
    std::cout << "\n";
  }
  return json::parse(report.json);
}

TEST(EvalProtocol, presets_are_dattris_settings_and_refuse_unknown_names) {
  auto lr = ProtocolSetup("dattri", "lds", "lr");
  TDA_ASSERT_OK(lr);
  EXPECT_EQ(lr->train_size, 5000);
  EXPECT_EQ(lr->queries, 500);
  EXPECT_EQ(lr->side, 28);
  EXPECT_TRUE(lr->config.hidden.empty());
  EXPECT_EQ(lr->recipe.optimizer, "sgd");
  EXPECT_EQ(lr->recipe.epochs, 20);
  auto mlp = ProtocolSetup("dattri", "lds", "mlp");
  TDA_ASSERT_OK(mlp);
  EXPECT_EQ(mlp->config.hidden, (std::vector<int64_t>{128, 64}));
  EXPECT_DOUBLE_EQ(mlp->config.dropout, 0.1);
  EXPECT_DOUBLE_EQ(mlp->recipe.momentum, 0.9);
  EXPECT_EQ(mlp->lds.subsets, 50);
  EXPECT_THAT(ProtocolSetup("trak", "lds", "lr"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("known: tda, dattri")));
  EXPECT_THAT(ProtocolSetup("dattri", "loo", "mlp"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--model lr")));
  EXPECT_THAT(ProtocolSetup("dattri", "lds", "gpt"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("protocol tda")));
}

// tda eval lds --model gpt, shrunk (16 held-out fortunes, 10 subsets): the preset's gpt and
// fortunes load through the same path as the CLI's and the job's (LoadPresetData), "auto"
// leaves exact and lissa out, and EK-FAC predicts the retrained held-out losses better than
// gradient-dot. (The full preset, 50 subsets and 48 queries: EK-FAC 0.490, gradient-dot 0.132,
// README "LDS for the language model"; text_lds_long_test.cc runs it.)
TEST(EvalProtocol, gpt_preset_ranks_ekfac_above_gradient_dot) {
  testing::TempDir cache;
  EvalRun run;
  run.experiment = "lds";
  absl::StatusOr<EvalSetup> setup = ProtocolSetup("tda", "lds", "gpt");
  TDA_ASSERT_OK(setup);
  run.setup = *setup;
  EXPECT_TRUE(run.setup.config.is_sequence());
  run.setup.queries = 16;
  run.setup.lds.subsets = 10;
  run.retrain_cache_dir = cache.path();
  Dataset train, test;
  TDA_ASSERT_OK(LoadPresetData(&run, "", &train, &test));
  EXPECT_EQ(train.size(), 512);
  EXPECT_EQ(test.size(), 16);
  absl::StatusOr<EvalReport> report = RunEval(run, train, test);
  TDA_ASSERT_OK(report);
  std::cout << report->settings << "\n";
  ASSERT_EQ(report->rows.size(), 3u);  // ekfac, kfac, gradient-dot
  for (const EvalRow& row : report->rows)
    std::cout << "  " << row.method << " " << row.value << "\n";
  EXPECT_EQ(report->rows[0].method, "ekfac");
  EXPECT_EQ(report->rows[2].method, "gradient-dot");
  EXPECT_GT(report->rows[0].value, report->rows[2].value + 0.1);
}

// The eval job's spec mirrors the flags: -1 / "preset" = the protocol's value, ranges checked.
TEST(EvalProtocol, eval_job_spec_mirrors_the_flags) {
  auto spec = NormalizeJobSpec("eval", R"({"out": "o", "protocol": "dattri", "model": "lr"})");
  TDA_ASSERT_OK(spec);
  const json normalized = json::parse(*spec);
  EXPECT_EQ(normalized["train_size"].get<int64_t>(), -1);
  EXPECT_EQ(normalized["hidden"].get<std::string>(), "preset");
  EXPECT_EQ(normalized["measurement"].get<std::string>(), "loss");
  EXPECT_THAT(NormalizeJobSpec("eval", R"({"out": "o", "side": 5})").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'side'")));
  EXPECT_THAT(NormalizeJobSpec("eval", R"({"out": "o", "dropout": 1})").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'dropout'")));
  // Ensembles: one model by default, lds only, refused before anything is trained.
  EXPECT_EQ(normalized["ensemble"].get<int64_t>(), 1);
  EXPECT_THAT(NormalizeJobSpec("eval", R"({"out": "o", "ensemble": 0})").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'ensemble'")));
  EvalRun loo;
  loo.experiment = "loo";
  auto setup = ProtocolSetup("dattri", "loo", "lr");
  TDA_ASSERT_OK(setup);
  loo.setup = *setup;
  loo.setup.ensemble = 2;
  EXPECT_THAT(RunEval(loo, testing::FashionTrain(20), testing::FashionTest(20)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("ensembles are for lds")));
  EvalRun lds = SmallDattriRun("lr", "");
  lds.setup.ensemble = 101;
  EXPECT_THAT(RunEval(lds, testing::FashionTrain(500), testing::FashionTest(8)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("1 to 100 models")));
}

// The dattri LR, shrunk: EK-FAC beats gradient-dot. Its subsets of 250 get the SGD steps of the
// preset's subsets of 2,500 (200 epochs instead of 20): the full protocol's regime, where the
// model is near its optimum (at 20 epochs on 250 samples it is not, and gradient-dot wins).
// The run again reads its saved retraining and gives bit-identical LDS.
TEST(EvalProtocol, small_dattri_lr_ranks_ekfac_above_gradient_dot_and_reuses_retrainings) {
  testing::TempDir cache;
  EvalRun run = SmallDattriRun("lr", cache.path());
  run.setup.recipe.epochs = 200;
  auto first = RunSmall(run);
  TDA_ASSERT_OK(first);
  EXPECT_FALSE((*first)["retraining_from_cache"].get<bool>());
  const double ekfac = (*first)["methods"][0]["lds"].get<double>();
  EXPECT_GT(ekfac, (*first)["methods"][1]["lds"].get<double>())
      << "EK-FAC does not beat gradient-dot";
  EXPECT_GT(ekfac, 0.1) << "EK-FAC's LDS is not clearly positive";
  auto second = RunSmall(run);
  TDA_ASSERT_OK(second);
  EXPECT_TRUE((*second)["retraining_from_cache"].get<bool>());
  EXPECT_EQ((*second)["methods"][0]["lds"].get<double>(), ekfac);  // bit-identical
  EXPECT_EQ((*second)["retrain_seconds"].get<double>(), (*first)["retrain_seconds"].get<double>());
}

// The dattri MLP (784-128-64-10, dropout 0.1, SGD with momentum), shrunk: EK-FAC beats
// gradient-dot. An ensemble of 3 such models (seeds 0, 1, 2; ablation/ensemble_scores.h),
// scored against the same saved retraining, has a higher EK-FAC LDS than the mean of its
// members' own; its member 0 is the single-model run bit for bit.
TEST(EvalProtocol, small_dattri_mlp_ranks_ekfac_above_gradient_dot_and_its_ensemble_above_members) {
  testing::TempDir cache;
  EvalRun run = SmallDattriRun("mlp", cache.path());
  auto single = RunSmall(run);
  TDA_ASSERT_OK(single);
  const double ekfac = (*single)["methods"][0]["lds"].get<double>();
  EXPECT_GT(ekfac, (*single)["methods"][1]["lds"].get<double>())
      << "EK-FAC does not beat gradient-dot";
  EXPECT_GT(ekfac, 0.1) << "EK-FAC's LDS is not clearly positive";

  run.setup.ensemble = 3;
  auto ensemble = RunSmall(run);
  TDA_ASSERT_OK(ensemble);
  EXPECT_TRUE((*ensemble)["retraining_from_cache"].get<bool>());
  EXPECT_EQ((*ensemble)["models_from_cache"].get<int64_t>(), 1);  // the single run's model
  EXPECT_EQ((*ensemble)["ensemble"].get<int64_t>(), 3);
  EXPECT_EQ((*ensemble)["member_dampings"][0].get<double>(), (*single)["damping"].get<double>());
  for (int m = 0; m < 2; ++m) {
    const json& method = (*ensemble)["methods"][m];
    ASSERT_EQ(method["member_lds"].size(), 3u);
    ASSERT_EQ(method["ensemble_curve"].size(), 3u);
    const double plain = (*single)["methods"][m]["lds"].get<double>();
    EXPECT_EQ(method["member_lds"][0].get<double>(), plain) << "member 0 is not the single run";
    EXPECT_EQ(method["ensemble_curve"][0].get<double>(), plain);
    EXPECT_EQ(method["ensemble_curve"][2].get<double>(), method["lds"].get<double>());
    EXPECT_NE(method["member_lds"][1].get<double>(), plain) << "members are not different models";
  }
  const json& ekfac3 = (*ensemble)["methods"][0];
  EXPECT_GT(ekfac3["lds"].get<double>(), ekfac3["members_mean_lds"].get<double>())
      << "the ensemble of 3 does not beat its members' mean LDS";
}

// A saved retraining is read back bit-for-bit; a flipped byte is detected, reported and the
// entry recomputed and rewritten; another recipe is another entry.
TEST(EvalProtocol, retrain_cache_verifies_entries_and_recomputes_damaged_ones) {
  testing::TempDir dir;
  int retrained = 0;
  auto retrain = [&retrained]() -> absl::StatusOr<LdsRetraining> {
    ++retrained;
    LdsRetraining r;
    r.train_size = 10;
    r.subsets = {{0, 2, 4, 6, 8}, {1, 3, 5, 7, 9}, {0, 1, 2, 3, 4}};
    r.measured.resize(3, 2);
    r.measured << 0.1, 1.0 / 3.0, std::sqrt(2.0), -1e-300, 12345.678901234567, std::exp(1.0);
    r.seconds = 1.25;
    return r;
  };
  std::vector<std::string> warnings;
  auto warn = [&warnings](const std::string& w) { warnings.push_back(w); };
  auto first = CachedRetrain(dir.path(), "key-a", retrain, warn);
  TDA_ASSERT_OK(first);
  EXPECT_FALSE(first->from_cache);
  auto second = CachedRetrain(dir.path(), "key-a", retrain, warn);
  TDA_ASSERT_OK(second);
  EXPECT_TRUE(second->from_cache);
  EXPECT_EQ(retrained, 1);
  EXPECT_TRUE((second->retraining.measured.array() == first->retraining.measured.array()).all());
  EXPECT_EQ(second->retraining.subsets, first->retraining.subsets);
  EXPECT_TRUE(warnings.empty());

  // Flip one digit inside the measurements.
  std::string text = testing::ReadText(first->path);
  const size_t at = text.find("12345.6");
  ASSERT_NE(at, std::string::npos);
  text[at + 2] = '9';
  testing::WriteText(first->path, text);
  auto damaged = CachedRetrain(dir.path(), "key-a", retrain, warn);
  TDA_ASSERT_OK(damaged);
  EXPECT_FALSE(damaged->from_cache);
  EXPECT_EQ(retrained, 2);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_THAT(warnings[0], HasSubstr("checksum"));
  auto repaired = CachedRetrain(dir.path(), "key-a", retrain, warn);
  TDA_ASSERT_OK(repaired);
  EXPECT_TRUE(repaired->from_cache);
  EXPECT_EQ(repaired->retraining.measured(2, 0), 12345.678901234567);

  auto other = CachedRetrain(dir.path(), "key-b", retrain, warn);
  TDA_ASSERT_OK(other);
  EXPECT_FALSE(other->from_cache);
  EXPECT_NE(other->path, first->path);
}

// A saved model (an ensemble member) is loaded with the same weights; damaged weights are
// detected by their fingerprint, reported, and the model trained and saved again.
TEST(EvalProtocol, trained_model_cache_verifies_entries_and_retrains_damaged_ones) {
  testing::TempDir dir;
  const Dataset train = testing::Downsample(testing::FashionTrain(200), 7);
  ModelConfig config;
  config.input_dim = train.feature_dim;
  config.hidden = {8};
  TrainRecipe recipe;
  recipe.epochs = 2;
  int trained = 0;
  auto train_model = [&]() -> absl::StatusOr<std::unique_ptr<Model>> {
    ++trained;
    ASSIGN_OR_RETURN(std::unique_ptr<Model> model, CreateModel(config, recipe.seed));
    RETURN_IF_ERROR(Train(*model, train, recipe).status());
    return model;
  };
  std::vector<std::string> warnings;
  auto warn = [&warnings](const std::string& w) { warnings.push_back(w); };
  const std::string key = TrainedModelKey(config, recipe, "tests", train);
  auto first = CachedTrain(dir.path(), key, recipe, train_model, warn);
  TDA_ASSERT_OK(first);
  EXPECT_FALSE(first->from_cache);
  auto second = CachedTrain(dir.path(), key, recipe, train_model, warn);
  TDA_ASSERT_OK(second);
  EXPECT_TRUE(second->from_cache);
  EXPECT_EQ(trained, 1);
  EXPECT_EQ(second->model->Fingerprint(), first->model->Fingerprint());
  EXPECT_TRUE(warnings.empty());

  std::string weights = testing::ReadText(first->path + "/model.safetensors");
  weights[weights.size() - 3] ^= 0x40;  // a weight's byte
  testing::WriteText(first->path + "/model.safetensors", weights);
  auto damaged = CachedTrain(dir.path(), key, recipe, train_model, warn);
  TDA_ASSERT_OK(damaged);
  EXPECT_FALSE(damaged->from_cache);
  EXPECT_EQ(trained, 2);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_THAT(warnings[0], HasSubstr("fingerprint"));
  EXPECT_EQ(damaged->model->Fingerprint(), first->model->Fingerprint());
  auto repaired = CachedTrain(dir.path(), key, recipe, train_model, warn);
  TDA_ASSERT_OK(repaired);
  EXPECT_TRUE(repaired->from_cache);

  TrainRecipe other = recipe;
  other.seed = 1;  // another member
  EXPECT_NE(TrainedModelKey(config, other, "tests", train), key);
}

// Dropout 0 is today's model: same config.json text, same training. Dropout > 0 changes the
// trained weights (deterministically for a seed), never the eval-mode forward: predictions
// are repeatable and the captured losses are -log of them.
TEST(EvalProtocol, dropout_applies_to_training_only) {
  const Dataset& train = testing::FashionTrain(300);
  ModelConfig config;
  config.hidden = {32};
  TrainRecipe recipe;
  recipe.epochs = 2;
  recipe.batch_size = 32;
  EXPECT_EQ(ModelConfigToJson(config, recipe).find("dropout"), std::string::npos);
  auto trained = [&](double dropout) {
    ModelConfig c = config;
    c.dropout = dropout;
    auto model = CreateModel(c, recipe.seed);
    EXPECT_TRUE(model.ok());
    EXPECT_TRUE(Train(**model, train, recipe).ok());
    return *std::move(model);
  };
  const std::string plain = trained(0)->Fingerprint();
  EXPECT_EQ(trained(0)->Fingerprint(), plain);
  std::unique_ptr<Model> dropped = trained(0.3);
  EXPECT_NE(dropped->Fingerprint(), plain);
  EXPECT_EQ(trained(0.3)->Fingerprint(), dropped->Fingerprint());

  const Dataset& queries = testing::FashionTest(16);
  auto p1 = dropped->Predict(queries.Rows(0, 16));
  auto p2 = dropped->Predict(queries.Rows(0, 16));
  TDA_ASSERT_OK(p1);
  TDA_ASSERT_OK(p2);
  EXPECT_TRUE((p1->array() == p2->array()).all());
  auto capture = dropped->Capture(queries.Rows(0, 16));
  TDA_ASSERT_OK(capture);
  for (int64_t q = 0; q < 16; ++q) {
    EXPECT_NEAR(capture->losses[q], -std::log((*p1)(q, queries.labels[q])), 1e-4);
  }
  // Saved and validated with the config.
  ModelConfig loaded;
  TrainRecipe loaded_recipe;
  ModelConfig with = config;
  with.dropout = 0.3;
  TDA_ASSERT_OK(
      ModelConfigFromJson(ModelConfigToJson(with, recipe), "test", &loaded, &loaded_recipe));
  EXPECT_DOUBLE_EQ(loaded.dropout, 0.3);
  with.dropout = 1.0;
  EXPECT_THAT(ValidateModelConfig(with),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("dropout 1")));
}

// f = -log(p_y / (1 - p_y)). On logistic regression its gradient is known in closed form,
// (w x^T, w) with w_y = -1, w_k = p_k / (1 - p_y); on an MLP it is checked by central
// differences of f (computed from Predict's probabilities) in every layer.
TEST(EvalProtocol, margin_gradient_is_the_derivative_of_the_negated_margin) {
  const Dataset train = testing::Downsample(testing::FashionTrain(200), 7);
  const Dataset queries = testing::Downsample(testing::FashionTest(4), 7);
  auto negated_margin = [&](const Model& model, int64_t q) {
    auto probs = model.Predict(queries.Rows(q, q + 1));
    EXPECT_TRUE(probs.ok());
    const double p = (*probs)(0, queries.labels[q]);
    return std::log1p(-p) - std::log(p);
  };
  for (const std::vector<int64_t>& hidden : {std::vector<int64_t>{}, std::vector<int64_t>{6}}) {
    ModelConfig config;
    config.input_dim = train.feature_dim;
    config.hidden = hidden;
    config.activation = "tanh";  // smooth, so central differences are accurate
    TrainRecipe recipe;
    recipe.epochs = 3;
    auto model = CreateModel(config, 1);
    TDA_ASSERT_OK(model);
    TDA_ASSERT_OK(Train(**model, train, recipe));
    auto values = QueryMeasurements(**model, queries, Measurement::kMargin);
    auto grads = MeasurementGradientColumns(**model, queries, Measurement::kMargin);
    TDA_ASSERT_OK(values);
    TDA_ASSERT_OK(grads);
    const int64_t d = (*model)->layout().total();
    for (int64_t q = 0; q < queries.size(); ++q) {
      EXPECT_NEAR((*values)(q), negated_margin(**model, q), 1e-4);
      Eigen::VectorXd expected(d);
      if (hidden.empty()) {
        auto probs = (*model)->Predict(queries.Rows(q, q + 1));
        TDA_ASSERT_OK(probs);
        const int32_t y = queries.labels[q];
        const double py = (*probs)(0, y);
        const int64_t cols = train.feature_dim + 1;
        for (int64_t k = 0; k < 10; ++k) {
          const double w = k == y ? -1.0 : (*probs)(0, k) / (1 - py);
          for (int64_t j = 0; j < train.feature_dim; ++j) {
            expected(k * cols + j) = w * queries.row(q)[j];
          }
          expected(k * cols + train.feature_dim) = w;
        }
      } else {
        const Eigen::VectorXf theta = (*model)->Parameters();
        const float eps = 1e-2f;
        for (int64_t i = 0; i < d; ++i) {
          Eigen::VectorXf moved = theta;
          moved(i) += eps;
          TDA_ASSERT_OK((*model)->SetParameters(moved));
          const double up = negated_margin(**model, q);
          moved(i) = theta(i) - eps;
          TDA_ASSERT_OK((*model)->SetParameters(moved));
          expected(i) = (up - negated_margin(**model, q)) / (2 * eps);
        }
        TDA_ASSERT_OK((*model)->SetParameters(theta));
      }
      const double error = (grads->col(q) - expected).norm() / expected.norm();
      EXPECT_LT(error, hidden.empty() ? 1e-5 : 2e-3)
          << "query " << q << ", hidden " << hidden.size();
    }
  }
}

}  // namespace
}  // namespace tda
