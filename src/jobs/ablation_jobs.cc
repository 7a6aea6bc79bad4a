#include "jobs/ablation_jobs.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "ablation/source_task_matrix.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "attribution/attributor.h"
#include "common/atomic_file.h"
#include "common/status_macros.h"
#include "jobs/job_outputs.h"
#include "model/recipe_data.h"

namespace tda {
namespace {

using json = nlohmann::json;

std::vector<std::string> SplitList(const std::string& text, char separator) {
  std::vector<std::string> out;
  for (absl::string_view part : absl::StrSplit(text, separator, absl::SkipWhitespace())) {
    out.emplace_back(absl::StripAsciiWhitespace(part));
  }
  return out;
}

// The training set the index's rows came from, checked row by row against the index.
absl::StatusOr<Dataset> IndexedTrainingData(const Attributor& attributor,
                                            const TrainRecipe& recipe) {
  ASSIGN_OR_RETURN(Dataset train,
                   LoadRecipeData(attributor.model().config(), recipe, Split::kTrain,
                                  attributor.index().manifest().data_dir));
  const GradientIndex& index = attributor.index();
  bool same = index.rows() == train.size();
  for (int64_t r = 0; same && r < index.rows(); ++r) same = index.sample(r).id == train.ids[r];
  if (!same) {
    return absl::FailedPreconditionError(absl::StrCat(
        "ablations retrain from the model's recipe, so the index must hold exactly its ",
        train.size(), " training samples in order; this index has ", index.rows(),
        " rows (appended to, or built with another --train-size?)"));
  }
  return train;
}

struct Loaded {
  std::unique_ptr<Attributor> attributor;
  TrainRecipe recipe;
  Dataset train;
  std::vector<AblationTask> tasks;
  AttributeOptions options;
};

absl::StatusOr<Loaded> Load(const json& spec, JobContext& context) {
  Loaded out;
  const std::string index_dir = spec["index"].get<std::string>();
  ASSIGN_OR_RETURN(out.attributor, Attributor::Open(index_dir));
  RETURN_IF_ERROR(LoadModel(index_dir + "/model", &out.recipe).status());
  ASSIGN_OR_RETURN(out.train, IndexedTrainingData(*out.attributor, out.recipe));
  ASSIGN_OR_RETURN(out.tasks, ParseAblationTasks(spec["tasks"].get<std::string>(),
                                                 out.attributor->model().config(), out.recipe));
  ASSIGN_OR_RETURN(out.options.method, ParseMethod(spec["method"].get<std::string>()));
  for (const AblationTask& task : out.tasks) {
    context.Log(absl::StrCat("task ", task.name, ": ", task.queries.size(), " queries"));
  }
  return out;
}

TrainingScoreFn ScorerOf(const Loaded& loaded) {
  return [&loaded](const Batch& queries) {
    return loaded.attributor->ScoreBatch(queries, loaded.options);
  };
}

// Training rows to remove: ids, whole sources, and/or the top-k proponents of one query.
absl::StatusOr<std::vector<int64_t>> RemovedRows(const json& spec, const Loaded& loaded) {
  std::set<int64_t> rows;
  const GradientIndex& index = loaded.attributor->index();
  for (const std::string& id : SplitList(spec["remove_ids"].get<std::string>(), ',')) {
    const int64_t row = index.FindRow(id);
    if (row < 0) return absl::InvalidArgumentError(absl::StrCat("unknown training id '", id, "'"));
    rows.insert(row);
  }
  for (const std::string& source : SplitList(spec["remove_sources"].get<std::string>(), ',')) {
    const size_t before = rows.size();
    for (int64_t r = 0; r < loaded.train.size(); ++r) {
      if (loaded.train.sources[r] == source) rows.insert(r);
    }
    if (rows.size() == before) {
      return absl::InvalidArgumentError(
          absl::StrCat("data source '", source, "' has no training samples in the index"));
    }
  }
  const int64_t k = spec["remove_top_k"].get<int64_t>();
  if (k > 0) {
    const std::string of = spec["top_k_of"].get<std::string>();
    if (of.empty()) return absl::InvalidArgumentError("remove_top_k needs top_k_of (a query id)");
    AttributeOptions options = loaded.options;
    options.top_k = k;
    Query query;
    query.sample_id = of;
    ASSIGN_OR_RETURN(std::vector<QueryResult> result,
                     loaded.attributor->Attribute({query}, options));
    for (const Hit& hit : result[0].proponents) rows.insert(hit.row);
  }
  return std::vector<int64_t>(rows.begin(), rows.end());
}

json EffectJson(const TaskEffect& task) {
  json queries = json::array();
  for (const QueryEffect& q : task.queries) {
    json line = {{"id", q.id}, {"base_loss", q.base_loss}, {"predicted", q.predicted}};
    if (q.newton) line["newton"] = *q.newton;
    if (q.retrained) line["retrained"] = *q.retrained;
    queries.push_back(line);
  }
  json out = {{"task", task.name}, {"mean_predicted", task.mean_predicted}, {"queries", queries}};
  if (task.mean_newton) out["mean_newton"] = *task.mean_newton;
  if (task.mean_retrained) out["mean_retrained"] = *task.mean_retrained;
  return out;
}

template <typename T>
json OptionalJson(const std::optional<T>& value) {
  return value ? json(*value) : json(nullptr);
}

}  // namespace

const JobKind& AblationJobKind() {
  static const JobKind* kind = new JobKind{
      "ablation",
      "remove training samples or sources; predicted vs Newton-step vs retrained loss changes",
      {PathField("index", PathRole::kInput, "",
                 "index directory of the model (its rows = its training set)"),
       StringField("tasks", "",
                   "query sets, ';'-separated: class:<name|n>[:N] (Fashion-MNIST test images) or "
                   "source:<category>[:N] (held-out fortunes)"),
       PathField("out", PathRole::kOutputFile, "", "JSON result file (written atomically)"),
       StringField("remove_ids", "\"\"", "training ids to remove, comma-separated"),
       StringField("remove_sources", "\"\"", "data sources to remove, comma-separated"),
       IntField("remove_top_k", "0", "also remove the top K proponents of top_k_of",
                Closed(0, kMaxTopK)),
       StringField("top_k_of", "\"\"", "the query id whose top proponents are removed"),
       StringField("method", "\"ekfac\"", "method of the predicted change"),
       IntField("newton", "1", "1: measure the Newton-step unlearning, 0: skip",
                Closed(0, 1)),
       IntField("retrain", "1", "1: retrain without the samples from the recipe, 0: skip",
                Closed(0, 1)),
       PathField("unlearned_out", PathRole::kOutputDirectory, "\"\"",
                 "save the Newton-step model to this directory"),
       OverwriteField()},
      {"predict", "covariance", "eigen-correction", "retrain"},
      false};
  return *kind;
}

const JobKind& SourceTaskMatrixJobKind() {
  static const JobKind* kind = new JobKind{
      "source-task-matrix",
      "predicted effect of removing each data source on each task (JSON, CSV, SVG heatmap)",
      {PathField("index", PathRole::kInput, "", "index directory"),
       StringField("tasks", "", "query sets, ';'-separated (as for ablation)"),
       PathField("out", PathRole::kOutputFile, "",
                 "JSON result (matrix and source pairs), written atomically"),
       PathField("csv", PathRole::kOutputFile, "\"\"", "also write the matrix as CSV"),
       PathField("svg", PathRole::kOutputFile, "\"\"", "also write a heatmap picture (SVG)"),
       StringField("method", "\"ekfac\"", "attribution method"),
       OverwriteField()},
      {"score"},
      true};
  return *kind;
}

absl::StatusOr<std::vector<AblationTask>> ParseAblationTasks(const std::string& text,
                                                             const ModelConfig& config,
                                                             const TrainRecipe& recipe) {
  std::vector<AblationTask> tasks;
  std::optional<Dataset> held_out;
  for (const std::string& item : SplitList(text, ';')) {
    const std::vector<std::string> parts = absl::StrSplit(item, ':');
    int64_t limit = 0;
    if (parts.size() < 2 || parts.size() > 3 ||
        (parts.size() == 3 && (!absl::SimpleAtoi(parts[2], &limit) || limit <= 0))) {
      return absl::InvalidArgumentError(absl::StrCat(
          "task '", item, "': expected class:<name|number>[:N] or source:<category>[:N]"));
    }
    if (!held_out) {
      ASSIGN_OR_RETURN(held_out, LoadRecipeData(config, recipe, Split::kTest));
    }
    std::vector<int64_t> rows;
    if (parts[0] == "class") {
      if (config.is_sequence()) {
        return absl::InvalidArgumentError(
            absl::StrCat("task '", item, "': a language model's tasks are source:<category>"));
      }
      const auto& names = held_out->class_names;
      int64_t label = std::find(names.begin(), names.end(), parts[1]) - names.begin();
      if (label == static_cast<int64_t>(names.size()) &&
          (!absl::SimpleAtoi(parts[1], &label) || label < 0 || label >= config.num_classes)) {
        return absl::InvalidArgumentError(
            absl::StrCat("task '", item, "': unknown class '", parts[1], "'"));
      }
      if (limit == 0) limit = 100;
      for (int64_t i = 0; i < held_out->size() && static_cast<int64_t>(rows.size()) < limit; ++i) {
        if (held_out->labels[i] == label) rows.push_back(i);
      }
    } else if (parts[0] == "source") {
      if (!config.is_sequence()) {
        return absl::InvalidArgumentError(
            absl::StrCat("task '", item, "': an image model's tasks are class:<name>"));
      }
      for (int64_t i = 0; i < held_out->size(); ++i) {
        if (held_out->sources[i] == parts[1] && (limit == 0 || static_cast<int64_t>(rows.size()) < limit)) {
          rows.push_back(i);
        }
      }
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("task '", item, "': unknown kind '", parts[0], "' (class or source)"));
    }
    if (rows.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("task '", item, "' selects no held-out samples"));
    }
    tasks.push_back({item, held_out->Select(rows)});
  }
  if (tasks.empty()) return absl::InvalidArgumentError("no tasks given");
  return tasks;
}

absl::StatusOr<std::string> RunAblationJob(const std::string& spec_json, JobContext& context) {
  const json spec = json::parse(spec_json);
  ASSIGN_OR_RETURN(Loaded loaded, Load(spec, context));
  ASSIGN_OR_RETURN(std::vector<int64_t> removed, RemovedRows(spec, loaded));
  context.Log(absl::StrCat("removing ", removed.size(), " of ", loaded.train.size(),
                           " training samples"));
  RemovalAblationOptions options;
  options.newton = spec["newton"].get<int64_t>() != 0;
  options.retrain = spec["retrain"].get<int64_t>() != 0;
  options.unlearned_model_dir = spec["unlearned_out"].get<std::string>();
  // The model is saved inside RunRemovalAblation: checked before, recorded after.
  if (!options.unlearned_model_dir.empty()) {
    RETURN_IF_ERROR(context.PrepareOutput("unlearned_out").status());
  }
  ASSIGN_OR_RETURN(RemovalAblationResult result,
                   RunRemovalAblation(loaded.attributor->model(), loaded.recipe, loaded.train,
                                      removed, loaded.tasks, ScorerOf(loaded), options,
                                      context.progress()));
  if (!options.unlearned_model_dir.empty()) RETURN_IF_ERROR(context.RecordOutput("unlearned_out"));
  json tasks = json::array();
  for (const TaskEffect& task : result.tasks) {
    tasks.push_back(EffectJson(task));
    context.Log(absl::StrCat(task.name, ": mean change predicted ", task.mean_predicted,
                             task.mean_newton ? absl::StrCat(", newton ", *task.mean_newton) : "",
                             task.mean_retrained ? absl::StrCat(", retrained ", *task.mean_retrained)
                                                 : ""));
  }
  const json out = {{"removed", result.removed},
                    {"training_samples", result.training_samples},
                    {"method", MethodName(loaded.options.method)},
                    {"tasks", tasks},
                    {"pearson_predicted_retrained", OptionalJson(result.pearson_predicted_retrained)},
                    {"pearson_newton_retrained", OptionalJson(result.pearson_newton_retrained)},
                    {"pearson_predicted_newton", OptionalJson(result.pearson_predicted_newton)},
                    {"seconds", {{"predict", result.seconds_predicted},
                                 {"newton", result.seconds_newton},
                                 {"retrain", result.seconds_retrain}}},
                    {"unlearned_model", options.unlearned_model_dir}};
  if (result.pearson_predicted_retrained) {
    context.Log(absl::StrCat("Pearson(predicted, retrained) = ",
                             *result.pearson_predicted_retrained));
  }
  RETURN_IF_ERROR(WriteJobOutput(context, "out", [&](const std::string& path) {
    return WriteFileAtomically(path, out.dump(2) + "\n");
  }));
  return spec["out"].get<std::string>();
}

absl::StatusOr<std::string> RunSourceTaskMatrixJob(const std::string& spec_json,
                                                   JobContext& context) {
  const json spec = json::parse(spec_json);
  ASSIGN_OR_RETURN(Loaded loaded, Load(spec, context));
  ReportProgress(context.progress(), "score", 0, 1);
  ASSIGN_OR_RETURN(SourceTaskMatrix matrix,
                   ComputeSourceTaskMatrix(loaded.train, loaded.tasks, ScorerOf(loaded)));
  ReportProgress(context.progress(), "score", 1, 1);
  json rows = json::array();
  for (size_t s = 0; s < matrix.sources.size(); ++s) {
    std::vector<double> effects(matrix.tasks.size());
    for (size_t t = 0; t < matrix.tasks.size(); ++t) effects[t] = matrix.effect(s, t);
    rows.push_back({{"source", matrix.sources[s]},
                    {"samples", matrix.source_sizes[s]},
                    {"effect", effects}});
  }
  json pairs = json::array();
  for (const SourcePair& p : matrix.pairs) {
    pairs.push_back({{"a", p.a}, {"b", p.b}, {"pearson", p.pearson}, {"relation", p.relation}});
  }
  const json out = {{"tasks", matrix.tasks}, {"sources", rows}, {"pairs", pairs},
                    {"method", MethodName(loaded.options.method)}};
  if (!spec["csv"].get<std::string>().empty()) {
    RETURN_IF_ERROR(WriteJobOutput(context, "csv", [&](const std::string& path) {
      return WriteFileAtomically(path, SourceTaskMatrixCsv(matrix));
    }));
  }
  if (!spec["svg"].get<std::string>().empty()) {
    RETURN_IF_ERROR(WriteJobOutput(context, "svg", [&](const std::string& path) {
      return WriteFileAtomically(
          path, SourceTaskMatrixSvg(matrix, absl::StrCat("source x task: predicted loss change (",
                                                         MethodName(loaded.options.method), ")")));
    }));
  }
  RETURN_IF_ERROR(WriteJobOutput(context, "out", [&](const std::string& path) {
    return WriteFileAtomically(path, out.dump(2) + "\n");
  }));
  return spec["out"].get<std::string>();
}

}  // namespace tda
