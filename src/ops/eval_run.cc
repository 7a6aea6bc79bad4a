#include "ops/eval_run.h"

#include <algorithm>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/statistics.h"
#include "common/status_macros.h"
#include "curvature/exact.h"
#include "data/fashion_mnist.h"
#include "data/fortunes.h"
#include "model/model.h"
#include "ops/lds_experiment.h"
#include "ops/loo_experiment.h"

namespace tda {
namespace {

using json = nlohmann::json;

// Fills vs_exact of every row when one of the methods is exact (`scores` parallel to `rows`):
// the mean over queries of Pearson(method's scores, exact's).
void CompareWithExact(const std::vector<Eigen::MatrixXd>& scores, std::vector<EvalRow>& rows) {
  for (size_t e = 0; e < rows.size(); ++e) {
    if (rows[e].method != MethodName(Method::kExact)) continue;
    for (size_t m = 0; m < rows.size(); ++m) {
      double sum = 0;
      for (Eigen::Index q = 0; q < scores[m].cols(); ++q) {
        sum += Pearson(Eigen::VectorXd(scores[m].col(q)), Eigen::VectorXd(scores[e].col(q)));
      }
      rows[m].vs_exact = sum / static_cast<double>(scores[m].cols());
      rows[m].has_vs_exact = true;
    }
  }
}

double Mean(const std::vector<double>& values) {
  return values.empty() ? 0.0
                        : Eigen::Map<const Eigen::VectorXd>(
                              values.data(), static_cast<Eigen::Index>(values.size()))
                              .mean();
}

// The row of one method's scores and its `value` (LDS or LOO Pearson).
EvalRow MethodRow(const MethodScores& m, double value) {
  EvalRow row;
  row.method = MethodName(m.method);
  row.value = value;
  row.seconds = m.seconds;
  row.peak_bytes = m.peak_bytes;
  row.detail = m.detail;
  return row;
}

int64_t ClassCount(const Dataset& data) {
  return data.class_names.empty() ? 10 : static_cast<int64_t>(data.class_names.size());
}

std::string Architecture(const ModelConfig& config) {
  if (config.is_sequence()) {
    return absl::StrFormat("%s d_model %d, %d layer(s), %d heads, context %d", config.kind,
                           config.d_model, config.layers, config.heads, config.context_length);
  }
  std::string arch =
      config.hidden.empty()
          ? absl::StrCat("logistic regression ", config.input_dim, "-", config.num_classes)
          : absl::StrCat("MLP ", config.input_dim, "-", absl::StrJoin(config.hidden, "-"), "-",
                         config.num_classes);
  if (config.dropout > 0) absl::StrAppend(&arch, " (dropout ", config.dropout, ")");
  return arch;
}

std::string RecipeText(const TrainRecipe& r) {
  return absl::StrFormat(
      "%s lr %g%s, %d epochs, batch %d, weight decay %g", r.optimizer, r.learning_rate,
      r.optimizer == "sgd" && r.momentum > 0 ? absl::StrCat(" momentum ", r.momentum)
                                             : std::string(),
      r.epochs, r.batch_size, r.weight_decay);
}

// The settings every report's JSON starts with.
json SettingsJson(const EvalRun& run, const ModelConfig& config, const Dataset& train) {
  const TrainRecipe& r = run.setup.recipe;
  return {{"experiment", run.experiment},
          {"protocol", run.protocol},
          {"model", Architecture(config)},
          {"model_preset", run.setup.model},
          {"dropout", config.dropout},
          {"train_size", train.size()},
          {"side", run.setup.side},
          {"optimizer", r.optimizer},
          {"learning_rate", r.learning_rate},
          {"momentum", r.momentum},
          {"epochs", r.epochs},
          {"batch_size", r.batch_size},
          {"weight_decay", r.weight_decay},
          {"seed", r.seed}};
}

json RowsJson(const std::string& value_name, const std::vector<EvalRow>& rows) {
  json out = json::array();
  for (const EvalRow& row : rows) {
    out.push_back({{"method", row.method},
                   {value_name, row.value},
                   {"pearson_vs_exact", row.has_vs_exact ? json(row.vs_exact) : json(nullptr)},
                   {"seconds", row.seconds},
                   {"peak_bytes", row.peak_bytes},
                   {"detail", row.detail}});
  }
  return out;
}

ModelConfig ResolvedConfig(const EvalSetup& setup, const Dataset& train) {
  ModelConfig config = setup.config;
  if (config.is_sequence()) return config;  // its vocabulary and context are the preset's
  config.input_dim = train.feature_dim;
  config.num_classes = ClassCount(train);
  return config;
}

absl::StatusOr<EvalReport> RunLds(const EvalRun& run, const Dataset& train, const Dataset& queries,
                                  const ProgressFn& progress) {
  LdsExperiment experiment;
  experiment.config = ResolvedConfig(run.setup, train);
  experiment.recipe = run.setup.recipe;
  experiment.lds = run.setup.lds;
  experiment.damping = run.damping;
  experiment.ensemble = run.setup.ensemble;
  experiment.unit_norm = run.setup.unit_norm;
  experiment.cancelled = run.cancelled;
  experiment.retrain_cache_dir = run.retrain_cache_dir;
  experiment.data_path = run.data_path;
  ASSIGN_OR_RETURN(std::unique_ptr<Model> probe, CreateModel(experiment.config, 0));
  // A language model's exact curvature spans every token of every document: "auto" leaves exact
  // and lissa out for it whatever its size (they can still be named).
  const int64_t auto_size = experiment.config.is_sequence() ? std::numeric_limits<int64_t>::max()
                                                            : probe->layout().total();
  ASSIGN_OR_RETURN(experiment.methods, ParseEvalMethods(run.methods, auto_size));
  ASSIGN_OR_RETURN(LdsExperimentResult lds, RunLdsExperiment(experiment, train, queries, progress));
  EvalReport report;
  std::vector<Eigen::MatrixXd> scores;
  for (LdsMethodResult& m : lds.methods) {
    EvalRow row = MethodRow(m.scores, m.lds.mean);
    if (experiment.ensemble > 1) {
      row.members_mean = Mean(m.member_lds);
      row.ensemble_curve = m.ensemble_curve;
    }
    report.rows.push_back(std::move(row));
    scores.push_back(std::move(m.scores.scores));
  }
  CompareWithExact(scores, report.rows);
  const LdsOptions& o = experiment.lds;
  report.settings = absl::StrFormat(
      "LDS (protocol %s): %s (%d parameters), N = %d, %s; %d subsets of %g x %d seed(s); "
      "%d queries, measurement %s%s; retraining %.1f s%s; damping %.4g%s",
      run.protocol, Architecture(experiment.config), lds.parameters, train.size(),
      RecipeText(experiment.recipe), o.subsets, o.alpha, o.seeds_per_subset, queries.size(),
      MeasurementName(o.measurement), experiment.unit_norm ? ", unit-normalised scores" : "",
      lds.retrain_seconds,
      lds.retraining_from_cache     ? absl::StrCat(" (saved, read from ", lds.retraining_path, ")")
      : lds.retraining_path.empty() ? std::string(" (not saved)")
                                    : absl::StrCat(" (now, saved to ", lds.retraining_path, ")"),
      lds.damping,
      experiment.ensemble > 1
          ? absl::StrFormat(
                " (member 1's)\nensemble of %d models (seeds %d..%d), trained in %.1f s (%d "
                "of them saved, read from the cache); dampings %s",
                experiment.ensemble, experiment.recipe.seed,
                experiment.recipe.seed + static_cast<uint64_t>(experiment.ensemble) - 1,
                lds.train_seconds, lds.models_from_cache,
                absl::StrJoin(lds.member_dampings, ", ",
                              [](std::string* out, double d) {
                                absl::StrAppend(out, absl::StrFormat("%.4g", d));
                              }))
          : std::string());
  json out = SettingsJson(run, experiment.config, train);
  out.update({{"subsets", o.subsets},
              {"alpha", o.alpha},
              {"seeds", o.seeds_per_subset},
              {"queries", queries.size()},
              {"measurement", MeasurementName(o.measurement)},
              {"damping", lds.damping},
              {"ensemble", experiment.ensemble},
              {"unit_norm", experiment.unit_norm},
              {"member_dampings", lds.member_dampings},
              {"train_seconds", lds.train_seconds},
              {"models_from_cache", lds.models_from_cache},
              {"retrain_seconds", lds.retrain_seconds},
              {"retraining_from_cache", lds.retraining_from_cache},
              {"retraining_path", lds.retraining_path},
              {"methods", RowsJson("lds", report.rows)}});
  for (size_t m = 0; m < lds.methods.size(); ++m) {
    out["methods"][m]["member_lds"] = lds.methods[m].member_lds;
    out["methods"][m]["members_mean_lds"] = Mean(lds.methods[m].member_lds);
    out["methods"][m]["ensemble_curve"] = lds.methods[m].ensemble_curve;
  }
  report.json = out.dump();
  return report;
}

absl::StatusOr<EvalReport> RunLoo(const EvalRun& run, const Dataset& train, const Dataset& test,
                                  const ProgressFn& progress) {
  if (!run.setup.config.hidden.empty()) {
    return absl::InvalidArgumentError(
        "leave-one-out needs the convex model: logistic regression (--model lr)");
  }
  if (run.setup.ensemble != 1) {
    return absl::InvalidArgumentError(
        "leave-one-out scores one converged model; ensembles are for lds (set ensemble to 1)");
  }
  if (run.setup.unit_norm) {
    return absl::InvalidArgumentError(
        "leave-one-out predicts loss changes, which unit-normalised scores do not estimate; "
        "unit_norm is for lds");
  }
  LooExperiment experiment;
  experiment.recipe = run.setup.recipe;
  experiment.query = run.query;
  experiment.top_k = run.top_k;
  experiment.random = run.random;
  const int64_t parameters = (train.feature_dim + 1) * ClassCount(train);
  ASSIGN_OR_RETURN(experiment.methods, ParseEvalMethods(run.methods, parameters));
  ASSIGN_OR_RETURN(LooExperimentResult loo, RunLooExperiment(experiment, train, test, progress));
  EvalReport report;
  std::vector<Eigen::MatrixXd> scores;
  for (size_t i = 0; i < loo.scores.size(); ++i) {
    const MethodScores& m = loo.scores[i];
    report.rows.push_back(MethodRow(m, loo.loo.pearson[i]));
    scores.push_back(m.scores);
  }
  CompareWithExact(scores, report.rows);
  const ModelConfig config = ResolvedConfig(run.setup, train);
  const std::string query_id = test.ids[loo.query];
  report.settings = absl::StrFormat(
      "leave-one-out (protocol %s): %s (%d parameters), N = %d, %s, then Newton-CG to the "
      "optimum;\nquery %s (loss %.4f); %d retrainings (top %d by %s + %d random)",
      run.protocol, Architecture(config), loo.parameters, train.size(),
      RecipeText(experiment.recipe), query_id, loo.loo.query_loss, loo.loo.removed.size(),
      experiment.top_k, report.rows[0].method, experiment.random);
  json out = SettingsJson(run, config, train);
  out.update({{"query", query_id},
              {"query_loss", loo.loo.query_loss},
              {"retrainings", loo.loo.removed.size()},
              {"methods", RowsJson("loo_pearson", report.rows)}});
  report.json = out.dump();
  return report;
}

}  // namespace

absl::StatusOr<std::vector<Method>> ParseEvalMethods(const std::string& text, int64_t parameters) {
  std::vector<Method> out;
  if (text == "auto") {
    out = {Method::kEkfac, Method::kKfac, Method::kGradientDot};
    if (parameters <= kMaxExactParameters) out.insert(out.end(), {Method::kExact, Method::kLissa});
    return out;
  }
  for (absl::string_view name : absl::StrSplit(text, ',')) {
    absl::StatusOr<Method> m = ParseMethod(std::string(name));
    if (!m.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown method '", std::string(name),
                       "' (use ekfac, kfac, gradient-dot, exact, lissa, separated by commas, "
                       "or auto)"));
    }
    out.push_back(*m);
  }
  return out;
}

int64_t EvalTestRows(const EvalRun& run) {
  if (run.experiment == "loo") return std::max<int64_t>(20, run.query + 1);
  return run.setup.queries;
}

absl::Status LoadPresetData(EvalRun* run, const std::string& dir, Dataset* train, Dataset* test) {
  const EvalSetup& s = run->setup;
  if (s.config.is_sequence()) {
    run->data_path = dir.empty() ? kFortunesDefaultDir : dir;
    TextSplitOptions split;
    split.context_length = s.config.context_length;
    split.limit = s.train_size;
    ASSIGN_OR_RETURN(*train, LoadFortunes(run->data_path, Split::kTrain, split));
    split.limit = EvalTestRows(*run);
    ASSIGN_OR_RETURN(*test, LoadFortunes(run->data_path, Split::kTest, split));
  } else {
    run->data_path = dir.empty() ? kFashionMnistDefaultDir : dir;
    ASSIGN_OR_RETURN(*train,
                     LoadFashionMnistAtSide(run->data_path, Split::kTrain, s.train_size, s.side));
    ASSIGN_OR_RETURN(
        *test, LoadFashionMnistAtSide(run->data_path, Split::kTest, EvalTestRows(*run), s.side));
  }
  if (train->size() < s.train_size || test->size() < EvalTestRows(*run)) {
    return absl::InvalidArgumentError(absl::StrCat(
        run->data_path, " has ", train->size(), " training and ", test->size(),
        " held-out samples; the experiment asks for ", s.train_size, " and ", EvalTestRows(*run)));
  }
  return absl::OkStatus();
}

absl::StatusOr<EvalReport> RunEval(const EvalRun& run, const Dataset& train, const Dataset& test,
                                   const ProgressFn& progress) {
  if (run.experiment == "lds") return RunLds(run, train, test, progress);
  if (run.experiment == "loo") return RunLoo(run, train, test, progress);
  return absl::InvalidArgumentError(
      absl::StrCat("unknown experiment '", run.experiment, "' (known: lds, loo)"));
}

}  // namespace tda
