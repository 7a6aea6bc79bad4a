#include "jobs/job_kinds.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "ablation/lds.h"
#include "ablation/method_scores.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "attribution/attributor.h"
#include "common/atomic_file.h"
#include "common/npy.h"
#include "common/status_macros.h"
#include "data/fashion_mnist.h"
#include "data/fortunes.h"
#include "index/index_builder.h"
#include "jobs/ablation_jobs.h"
#include "jobs/eval_jobs.h"
#include "jobs/job_outputs.h"
#include "model/model.h"
#include "model/recipe_data.h"
#include "model/trainer.h"
#include "ops/build_model_index.h"
#include "ops/lds_experiment.h"

namespace tda {

namespace {

using json = nlohmann::json;

// Bounds shared by several kinds.
constexpr double kMaxSeed = 9007199254740991;  // 2^53 - 1: exact in JSON numbers
constexpr double kMaxSamples = 1e9;
constexpr double kMaxSleepSeconds = 7 * 24 * 3600;

const std::vector<JobKind>& AllKinds() {
  static const std::vector<JobKind>* kinds = new std::vector<JobKind>{
      {"build-index",
       "fit curvature factors and write the gradient index of a trained model",
       {PathField("model_dir", PathRole::kInput, "", "model directory written by 'tda train'"),
        PathField("out_dir", PathRole::kOutputDirectory, "",
                  "index directory to write (replaced when complete)"),
        IntField("projection_dim", "32", "projection K x K per layer; 0 = exact gradients",
                 Closed(0, 4096)),
        StringField("dtype", "\"f32\"", "row storage: f32, bf16 or f16"),
        IntField("train_size", "-1", "index the first N training samples (-1: the model's)",
                 ClosedOr(-1, 1, kMaxSamples)),
        StringField("fisher", "\"true\"", "true or empirical Fisher for the curvature"),
        IntField("factor_examples", "100000",
                 "training samples used to fit the factors (spread over the data)",
                 Closed(1, kMaxSamples)),
        IntField("batch_size", "0", "samples per gradient batch (0: 512 images, 32 documents)",
                 Closed(0, 65536)),
        IntField("seed", "0", "seed of the projection and the Fisher label sampling",
                 Closed(0, kMaxSeed)),
        PathField("data_dir", PathRole::kInput, "\"\"",
                  "training data directory (default: the model's)"),
        {"adam_correction", JobSpecField::Type::kBool, "false",
         "TrackStar: divide every gradient by sqrt(v_hat) + eps of the model's saved Adam state "
         "before projection (tda index build --adam-correction)",
         PathRole::kNone, std::nullopt},
        IntField("ensemble", "1",
                 "an ensemble index of E models: this one and E - 1 trained now by its recipe "
                 "with seeds seed + 1, ... (tda index build --ensemble)",
                 Closed(1, 100)),
        OverwriteField()},
       {"covariance", "eigen-correction", "gradients", "train"},
       true},
      {"batch-attribute",
       "attribute a JSONL file of queries: results as JSONL, scores as .npy",
       {PathField("index", PathRole::kInput, "", "index directory"),
        PathField("queries", PathRole::kInput, "",
                  "JSONL input, one query per line: {\"sample_id\": ID} or {\"raw\": "
                  "{\"features\": [...]}, \"label\": L}"),
        PathField("out", PathRole::kOutputFile, "",
                  "JSONL output, one result per query (written atomically)"),
        PathField("scores_out", PathRole::kOutputFile, "\"\"",
                  "also write every row's score, (queries, rows) float32 .npy"),
        IntField("top_k", "10", "proponents and opponents per query", Closed(1, kMaxTopK)),
        StringField("method", "\"ekfac\"", "ekfac, kfac, gradient-dot (lissa, exact)"),
        DoubleField("damping", "-1",
                    "damping = X x mean eigenvalue per layer (-1: the index's default)",
                    ClosedOr(-1, 0, 1e12)),
        IntField("batch", "32", "queries per engine call (cancellation granularity)",
                 Closed(1, kMaxQueriesPerRequest)),
        OverwriteField()},
       {"attribute"},
       true},
      {"evaluate-lds",
       "linear datamodeling score of attribution methods on Fashion-MNIST (retrains subsets)",
       {PathField("out", PathRole::kOutputFile, "", "JSON result file (written atomically)"),
        IntField("train_size", "1000", "first N Fashion-MNIST training images", Closed(2, 60000)),
        IntField("queries", "20", "first Q test images are the queries", Closed(1, 10000)),
        IntField("side", "28", "downsample images to side x side (a divisor of 28: 7, 14, 28)",
                 Closed(1, 28)),
        StringField("hidden", "\"16\"", "hidden layer widths, comma-separated ('' = none)"),
        IntField("epochs", "40", "Adam epochs of every training run", Closed(1, 10000)),
        IntField("batch_size", "64", "minibatch size", Closed(1, 60000)),
        DoubleField("lr", "0.001", "Adam learning rate", LeftOpen(0, 10)),
        DoubleField("weight_decay", "0.001", "L2 coefficient of the training objective",
                    Closed(0, 100)),
        IntField("subsets", "50", "random training subsets M", Closed(2, 10000)),
        DoubleField("alpha", "0.5", "fraction of the training set in each subset", Open(0, 1)),
        IntField("seeds", "1", "retrainings per subset (different seeds), averaged",
                 Closed(1, 100)),
        DoubleField("damping", "-1",
                    "absolute damping of every method (-1: weight decay + 0.1 x mean EK-FAC "
                    "eigenvalue)",
                    ClosedOr(-1, 0, 1e6)),
        StringField("methods", "\"ekfac,kfac,gradient-dot\"", "methods, comma-separated"),
        IntField("seed", "0", "seed of initialisation, shuffling and sampling",
                 Closed(0, kMaxSeed)),
        OverwriteField()},
       {"train", "retrain", "covariance", "eigen-correction"},
       false},
      {"sleep",
       "wait a number of seconds, reporting progress (diagnostic: exercises the runner)",
       {DoubleField("seconds", "", "how long to wait", LeftOpen(0, kMaxSleepSeconds))},
       {"sleep"},
       true},
      AblationJobKind(),
      SourceTaskMatrixJobKind(),
      EvalJobKind(),
  };
  return *kinds;
}

// Moves a complete directory `from` over `to` (the old `to`, if any, is removed), and syncs
// the parent directory. A crash in between leaves `to` either complete or absent.
absl::Status ReplaceDirectory(const std::string& from, const std::string& to,
                              const std::string& old) {
  std::error_code error;
  std::filesystem::remove_all(old, error);
  if (std::filesystem::exists(to)) {
    std::filesystem::rename(to, old, error);
    if (error) return absl::InternalError(absl::StrCat("rename ", to, ": ", error.message()));
  }
  std::filesystem::rename(from, to, error);
  if (error) return absl::InternalError(absl::StrCat("rename ", from, ": ", error.message()));
  std::filesystem::remove_all(old, error);
  const std::string parent = std::filesystem::path(to).parent_path().string();
  return SyncDirectory(parent.empty() ? "." : parent);
}

absl::StatusOr<std::string> RunBuildIndex(const json& spec, JobContext& context) {
  ModelIndexRequest request;
  IndexBuildOptions& options = request.index;
  options.model_dir = spec["model_dir"].get<std::string>();
  const std::string out_dir = spec["out_dir"].get<std::string>();
  options.projection_dim_per_side = spec["projection_dim"].get<int64_t>();
  options.projection_seed = spec["seed"].get<uint64_t>();
  options.fit.seed = options.projection_seed;
  options.fit.max_examples = spec["factor_examples"].get<int64_t>();
  options.batch_size = spec["batch_size"].get<int64_t>();
  options.fit.batch_size = options.batch_size;  // 0: the build picks both
  ASSIGN_OR_RETURN(options.dtype, ParseRowDType(spec["dtype"].get<std::string>()));
  ASSIGN_OR_RETURN(options.fit.fisher, ParseFisherKind(spec["fisher"].get<std::string>()));
  request.train_size = spec["train_size"].get<int64_t>();
  request.data_dir = spec["data_dir"].get<std::string>();
  options.adam_correction = spec["adam_correction"].get<bool>();
  request.ensemble = spec["ensemble"].get<int64_t>();

  // Every attempt starts from scratch in its own temporary directory.
  const std::string temp = absl::StrCat(out_dir, ".job", context.job_id(), "-tmp");
  const std::string old = absl::StrCat(out_dir, ".job", context.job_id(), "-old");
  std::error_code error;
  std::filesystem::remove_all(temp, error);
  context.RemoveOnCancel(temp);
  options.out_dir = temp;
  RETURN_IF_ERROR(BuildModelIndex(request, context.progress(),
                                  [&](const ModelIndexPlan& plan) {
                                    context.Log(absl::StrCat(
                                        "indexing ", plan.rows, " training samples of ",
                                        plan.data_dir, " (attempt ", context.attempt(),
                                        ", into ", temp, ")"));
                                  })
                      .status());
  const absl::Status replaced = WriteJobOutput(context, "out_dir", [&](const std::string& path) {
    return ReplaceDirectory(temp, path, old);
  });
  if (!replaced.ok()) {
    std::filesystem::remove_all(temp, error);  // our own temporary directory
    return replaced;
  }
  context.Log(absl::StrCat("index written to ", out_dir));
  return out_dir;
}

absl::StatusOr<Query> ParseQueryLine(const std::string& line, const std::string& where) {
  const json q = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!q.is_object()) return absl::InvalidArgumentError(absl::StrCat(where, ": not a JSON object"));
  Query query;
  if (q.contains("label")) {
    if (!q["label"].is_number_integer()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": label must be an integer"));
    }
    query.label = q["label"].get<int32_t>();
  }
  if (q.contains("sample_id") && q["sample_id"].is_string()) {
    query.sample_id = q["sample_id"].get<std::string>();
  } else if (q.contains("raw") && q["raw"].is_object() && q["raw"].contains("features") &&
             q["raw"]["features"].is_array()) {
    for (const json& v : q["raw"]["features"]) {
      if (!v.is_number()) {
        return absl::InvalidArgumentError(absl::StrCat(where, ": features must be numbers"));
      }
      query.features.push_back(v.get<float>());
    }
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": expected \"sample_id\" or \"raw\": {\"features\": [...]}"));
  }
  return query;
}

json HitsJson(const std::vector<Hit>& hits) {
  json out = json::array();
  for (const Hit& h : hits) {
    out.push_back({{"row", h.row},
                   {"sample_id", h.id},
                   {"source", h.source},
                   {"label", h.label},
                   {"score", h.score}});
  }
  return out;
}

// One result line, with the field names of tda.v1.QueryResult's JSON mapping.
std::string ResultLine(const QueryResult& r) {
  json line = {{"query_id", r.query_id},
               {"label", r.label},
               {"predicted_label", r.predicted_label},
               {"label_probability", r.label_probability},
               {"loss", r.loss},
               {"proponents", HitsJson(r.proponents)},
               {"opponents", HitsJson(r.opponents)}};
  if (r.true_label >= 0) line["true_label"] = r.true_label;
  return line.dump() + "\n";
}

absl::StatusOr<std::string> RunBatchAttribute(const json& spec, JobContext& context) {
  const std::string queries_path = spec["queries"].get<std::string>();
  const std::string out_path = spec["out"].get<std::string>();
  const std::string scores_path = spec["scores_out"].get<std::string>();
  const int64_t batch = spec["batch"].get<int64_t>();
  if (batch <= 0) return absl::InvalidArgumentError(absl::StrCat("batch must be > 0, got ", batch));
  std::ifstream in(queries_path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read queries file ", queries_path));
  std::vector<Query> queries;
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    ASSIGN_OR_RETURN(Query q, ParseQueryLine(line, absl::StrCat(queries_path, ":", number)));
    queries.push_back(std::move(q));
  }
  if (queries.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("queries file ", queries_path, " is empty"));
  }
  AttributeOptions options;
  options.top_k = spec["top_k"].get<int64_t>();
  ASSIGN_OR_RETURN(options.method, ParseMethod(spec["method"].get<std::string>()));
  if (spec["damping"].get<double>() >= 0) {
    options.damping = Damping{spec["damping"].get<double>(), std::nullopt};
  }
  options.return_scores = !scores_path.empty();
  ASSIGN_OR_RETURN(std::unique_ptr<Attributor> attributor,
                   Attributor::Open(spec["index"].get<std::string>()));
  context.Log(absl::StrCat(queries.size(), " queries against ", attributor->index().rows(),
                           " index rows (", MethodName(options.method), ")"));

  AtomicFileWriter out;
  RETURN_IF_ERROR(out.Open(out_path));
  std::vector<float> scores;
  const int64_t n = static_cast<int64_t>(queries.size());
  ReportProgress(context.progress(), "attribute", 0, n);
  for (int64_t begin = 0; begin < n; begin += batch) {
    if (context.cancelled()) return absl::CancelledError("cancelled");
    const std::vector<Query> chunk(queries.begin() + begin,
                                   queries.begin() + std::min(n, begin + batch));
    ASSIGN_OR_RETURN(std::vector<QueryResult> results, attributor->Attribute(chunk, options));
    for (const QueryResult& r : results) {
      const std::string text = ResultLine(r);
      RETURN_IF_ERROR(out.Append(text.data(), text.size()));
      scores.insert(scores.end(), r.scores.begin(), r.scores.end());
    }
    ReportProgress(context.progress(), "attribute", begin + static_cast<int64_t>(chunk.size()), n);
  }
  if (!scores_path.empty()) {
    RETURN_IF_ERROR(WriteJobOutput(context, "scores_out", [&](const std::string& path) {
      return WriteNpyF32(path, {n, attributor->index().rows()}, scores.data());
    }));
    context.Log(absl::StrCat("scores written to ", scores_path));
  }
  RETURN_IF_ERROR(WriteJobOutput(context, "out", [&](const std::string&) { return out.Commit(); }));
  context.Log(absl::StrCat("results written to ", out_path));
  return out_path;
}

// The `tda eval lds` protocol (src/ablation/lds.h) on 28x28 images; one JSON object out.
absl::StatusOr<std::string> RunEvaluateLds(const json& spec, JobContext& context) {
  LdsExperiment experiment;
  experiment.config.hidden.clear();
  for (absl::string_view width :
       absl::StrSplit(spec["hidden"].get<std::string>(), ',', absl::SkipEmpty())) {
    int64_t w = 0;
    if (!absl::SimpleAtoi(width, &w) || w <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("hidden: '", std::string(width), "' is not a positive width"));
    }
    experiment.config.hidden.push_back(w);
  }
  for (absl::string_view name : absl::StrSplit(spec["methods"].get<std::string>(), ',')) {
    ASSIGN_OR_RETURN(Method m, ParseMethod(std::string(name)));
    experiment.methods.push_back(m);
  }
  experiment.lds.subsets = spec["subsets"].get<int64_t>();
  experiment.lds.alpha = spec["alpha"].get<double>();
  experiment.lds.seeds_per_subset = spec["seeds"].get<int64_t>();
  experiment.lds.seed = spec["seed"].get<uint64_t>();
  if (spec["damping"].get<double>() >= 0) experiment.damping = spec["damping"].get<double>();
  experiment.recipe.epochs = spec["epochs"].get<int64_t>();
  experiment.recipe.batch_size = spec["batch_size"].get<int64_t>();
  experiment.recipe.learning_rate = spec["lr"].get<double>();
  experiment.recipe.weight_decay = spec["weight_decay"].get<double>();
  experiment.recipe.seed = experiment.lds.seed;
  experiment.cancelled = [&context] { return context.cancelled(); };
  RETURN_IF_ERROR(ValidateLdsOptions(experiment.lds, spec["train_size"].get<int64_t>()));
  const int64_t side = spec["side"].get<int64_t>();
  ASSIGN_OR_RETURN(Dataset train, LoadFashionMnistAtSide(kFashionMnistDefaultDir, Split::kTrain,
                                                         spec["train_size"].get<int64_t>(), side));
  ASSIGN_OR_RETURN(Dataset queries, LoadFashionMnistAtSide(kFashionMnistDefaultDir, Split::kTest,
                                                           spec["queries"].get<int64_t>(), side));
  ASSIGN_OR_RETURN(LdsExperimentResult lds,
                   RunLdsExperiment(experiment, train, queries, context.progress(),
                                    [&context](const LdsMethodResult& m) {
                                      context.Log(absl::StrFormat(
                                          "%s: LDS %.4f (%.2f s)", MethodName(m.scores.method),
                                          m.lds.mean, m.scores.seconds));
                                    }));
  json result = {{"experiment", "lds"},
                 {"train_size", train.size()},
                 {"queries", queries.size()},
                 {"side", side},
                 {"subsets", experiment.lds.subsets},
                 {"alpha", experiment.lds.alpha},
                 {"seeds", experiment.lds.seeds_per_subset},
                 {"damping", lds.damping},
                 {"retrain_seconds", lds.retrain_seconds},
                 {"methods", json::array()}};
  for (const LdsMethodResult& m : lds.methods) {
    result["methods"].push_back({{"method", MethodName(m.scores.method)},
                                 {"lds", m.lds.mean},
                                 {"seconds", m.scores.seconds}});
  }
  const std::string out = spec["out"].get<std::string>();
  RETURN_IF_ERROR(WriteJobOutput(context, "out", [&](const std::string& path) {
    return WriteFileAtomically(path, result.dump(2) + "\n");
  }));
  return out;
}

absl::StatusOr<std::string> RunSleep(const json& spec, JobContext& context) {
  const double seconds = spec["seconds"].get<double>();  // in range: NormalizeJobSpec
  const auto start = std::chrono::steady_clock::now();
  const int64_t total = static_cast<int64_t>(seconds * 10);
  for (int64_t step = 0; step < total; ++step) {
    if (context.cancelled()) return absl::CancelledError("cancelled");
    std::this_thread::sleep_until(start + std::chrono::milliseconds(100 * (step + 1)));
    ReportProgress(context.progress(), "sleep", step + 1, total);
  }
  return std::string();
}

}  // namespace

const std::vector<JobKind>& JobKinds() { return AllKinds(); }

absl::StatusOr<const JobKind*> FindJobKind(const std::string& name) {
  std::vector<std::string> names;
  for (const JobKind& kind : AllKinds()) {
    if (kind.name == name) return &kind;
    names.push_back(kind.name);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown job kind '", name, "' (known: ", absl::StrJoin(names, ", "), ")"));
}

absl::StatusOr<std::string> NormalizeJobSpec(const std::string& kind_name,
                                             const std::string& spec_json) {
  ASSIGN_OR_RETURN(const JobKind* kind, FindJobKind(kind_name));
  return NormalizeSpec(*kind, spec_json);
}

absl::StatusOr<std::string> RunJob(const std::string& kind, const std::string& spec_json,
                                   JobContext& context) {
  ASSIGN_OR_RETURN(const std::string normalized, NormalizeJobSpec(kind, spec_json));
  const json spec = json::parse(normalized);
  if (kind == "build-index") return RunBuildIndex(spec, context);
  if (kind == "batch-attribute") return RunBatchAttribute(spec, context);
  if (kind == "evaluate-lds") return RunEvaluateLds(spec, context);
  if (kind == "sleep") return RunSleep(spec, context);
  if (kind == "ablation") return RunAblationJob(normalized, context);
  if (kind == "source-task-matrix") return RunSourceTaskMatrixJob(normalized, context);
  if (kind == "eval") return RunEvalJob(normalized, context);
  return absl::UnimplementedError(absl::StrCat("job kind '", kind, "' has no runner"));
}

}  // namespace tda
