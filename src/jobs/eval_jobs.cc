#include "jobs/eval_jobs.h"

#include <nlohmann/json.hpp>

#include "ablation/ensemble_scores.h"
#include "ablation/retrain_cache.h"
#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "common/flags.h"
#include "common/status_macros.h"
#include "data/fashion_mnist.h"
#include "jobs/job_outputs.h"
#include "ops/eval_run.h"

namespace tda {
namespace {

using json = nlohmann::json;

constexpr double kMaxSeed = 9007199254740991;  // 2^53 - 1: exact in JSON numbers

// Sets `*field` from spec[name] unless it holds the "preset" value (-1).
template <typename T>
void OverrideNumber(const json& spec, const char* name, T* field) {
  const double value = spec[name].get<double>();
  if (value != -1) *field = static_cast<T>(value);
}

}  // namespace

const JobKind& EvalJobKind() {
  static const JobKind* kind = new JobKind{
      "eval",
      "tda eval lds | loo as a job: faithfulness of attribution methods by retraining",
      {PathField("out", PathRole::kOutputFile, "", "JSON result file (written atomically)"),
       StringField("experiment", "\"lds\"", "lds or loo"),
       StringField("protocol", "\"tda\"", "settings preset: tda or dattri"),
       StringField("model", "\"\"", "lr, mlp or gpt (lds only) ('' = mlp for lds, lr for loo)"),
       IntField("train_size", "-1", "first N training images (-1: the preset's)",
                ClosedOr(-1, 4, 60000)),
       IntField("queries", "-1", "lds: first Q test images are the queries (-1: preset's)",
                ClosedOr(-1, 1, 10000)),
       IntField("side", "-1", "downsample images to side x side: 7, 14 or 28 (-1: preset's)",
                ClosedOr(-1, 7, 28)),
       StringField("hidden", "\"preset\"",
                   "lds: hidden widths, comma-separated ('none': logistic regression)"),
       DoubleField("dropout", "-1", "lds: mlp dropout in training (-1: preset's)",
                   ClosedOr(-1, 0, 0.99)),
       StringField("optimizer", "\"\"", "adam, sgd or adamw ('' = preset's)"),
       DoubleField("lr", "-1", "learning rate (-1: preset's)", ClosedOr(-1, 1e-9, 10)),
       DoubleField("momentum", "-1", "SGD momentum (-1: preset's)", ClosedOr(-1, 0, 1)),
       IntField("epochs", "-1", "epochs of every training run (-1: preset's)",
                ClosedOr(-1, 1, 10000)),
       IntField("batch_size", "-1", "minibatch size (-1: preset's)", ClosedOr(-1, 1, 60000)),
       DoubleField("weight_decay", "-1", "L2 coefficient (-1: preset's)", ClosedOr(-1, 0, 100)),
       IntField("subsets", "-1", "lds: random training subsets (-1: preset's)",
                ClosedOr(-1, 2, 10000)),
       DoubleField("alpha", "-1", "lds: fraction kept in each subset (-1: preset's)",
                   ClosedOr(-1, 0.001, 0.999)),
       IntField("seeds", "1", "lds: retrainings per subset, averaged", Closed(1, 100)),
       StringField("measurement", "\"loss\"", "lds: loss, mean or margin"),
       DoubleField("damping", "-1", "lds: absolute damping of every method (-1: default)",
                   ClosedOr(-1, 0, 1e6)),
       IntField("ensemble", "1", "lds: models (seeds seed..seed+E-1) whose mean score is scored",
                Closed(1, kMaxEnsembleMembers)),
       {"unit_norm", JobSpecField::Type::kBool, "false",
        "lds: TrackStar's unit-normalised scores (tda eval lds --unit-norm)", PathRole::kNone,
        std::nullopt},
       StringField("methods", "\"auto\"", "methods, comma-separated, or auto"),
       IntField("seed", "0", "seed of initialisation, shuffling and sampling", Closed(0, kMaxSeed)),
       IntField("query", "-1", "loo: test image (-1: highest loss of the first 20)",
                ClosedOr(-1, 0, 10000)),
       IntField("top_k", "20", "loo: retrain without the K most influential", Closed(1, 1000)),
       IntField("random", "20", "loo: and R random others", Closed(0, 1000)),
       OverwriteField()},
      {"train", "retrain", "covariance", "eigen-correction"},
      true};
  return *kind;
}

absl::StatusOr<std::string> RunEvalJob(const std::string& spec_json, JobContext& context) {
  const json spec = json::parse(spec_json);
  EvalRun run;
  run.experiment = spec["experiment"].get<std::string>();
  if (run.experiment != "lds" && run.experiment != "loo") {
    return absl::InvalidArgumentError(
        absl::StrCat("experiment: '", run.experiment, "' is not lds or loo"));
  }
  run.protocol = spec["protocol"].get<std::string>();
  std::string model = spec["model"].get<std::string>();
  if (model.empty()) model = run.experiment == "loo" ? "lr" : "mlp";
  ASSIGN_OR_RETURN(run.setup, ProtocolSetup(run.protocol, run.experiment, model));
  EvalSetup& s = run.setup;
  TrainRecipe& r = s.recipe;
  OverrideNumber(spec, "train_size", &s.train_size);
  OverrideNumber(spec, "queries", &s.queries);
  OverrideNumber(spec, "side", &s.side);
  if (!s.config.is_sequence() && s.side != 7 && s.side != 14 && s.side != 28) {
    return absl::InvalidArgumentError("side: 7, 14 or 28");
  }
  if (const std::string hidden = spec["hidden"].get<std::string>(); hidden != "preset") {
    RETURN_IF_ERROR(ParseLayerWidths(hidden, &s.config.hidden));
  }
  OverrideNumber(spec, "dropout", &s.config.dropout);
  if (const std::string opt = spec["optimizer"].get<std::string>(); !opt.empty()) {
    r.optimizer = opt;
  }
  if (r.optimizer != "adam" && r.optimizer != "sgd" && r.optimizer != "adamw") {
    return absl::InvalidArgumentError("optimizer: adam, sgd or adamw");
  }
  OverrideNumber(spec, "lr", &r.learning_rate);
  OverrideNumber(spec, "momentum", &r.momentum);
  OverrideNumber(spec, "epochs", &r.epochs);
  OverrideNumber(spec, "batch_size", &r.batch_size);
  OverrideNumber(spec, "weight_decay", &r.weight_decay);
  OverrideNumber(spec, "subsets", &s.lds.subsets);
  OverrideNumber(spec, "alpha", &s.lds.alpha);
  s.lds.seeds_per_subset = spec["seeds"].get<int64_t>();
  ASSIGN_OR_RETURN(s.lds.measurement, ParseMeasurement(spec["measurement"].get<std::string>()));
  r.seed = spec["seed"].get<uint64_t>();
  s.lds.seed = r.seed;
  if (spec["damping"].get<double>() >= 0) run.damping = spec["damping"].get<double>();
  s.ensemble = spec["ensemble"].get<int64_t>();
  s.unit_norm = spec["unit_norm"].get<bool>();
  run.methods = spec["methods"].get<std::string>();
  run.query = spec["query"].get<int64_t>();
  run.top_k = spec["top_k"].get<int64_t>();
  run.random = spec["random"].get<int64_t>();
  if (run.experiment == "lds") {
    RETURN_IF_ERROR(ValidateLdsOptions(s.lds, s.train_size));
  } else if (!(r.weight_decay > 0)) {
    return absl::InvalidArgumentError("leave-one-out needs weight_decay > 0 (a convex objective)");
  }
  run.retrain_cache_dir = DefaultRetrainCacheDir();
  run.cancelled = [&context] { return context.cancelled(); };
  Dataset train, test;
  RETURN_IF_ERROR(LoadPresetData(&run, "", &train, &test));
  ASSIGN_OR_RETURN(EvalReport report, RunEval(run, train, test, context.progress()));
  context.Log(report.settings);
  const std::string out = spec["out"].get<std::string>();
  RETURN_IF_ERROR(WriteJobOutput(context, "out", [&](const std::string& path) {
    return WriteFileAtomically(path, report.json + "\n");
  }));
  return out;
}

}  // namespace tda
