// tda query: which training images drove the model's output on some test images.
#include <unistd.h>

#include <iostream>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "attribution/low_rank_queries.h"
#include "client/attribution_backend.h"
#include "client/channel.h"
#include "client/commands.h"
#include "client/curvature_flags.h"
#include "client/html_report.h"
#include "client/progress_bar.h"
#include "client/result_format.h"
#include "common/atomic_file.h"
#include "common/flags.h"
#include "common/npy.h"
#include "model/model.h"

namespace tda {

namespace {

// --label: a class index, or a class name (case-insensitive).
absl::StatusOr<int32_t> ParseLabel(const std::string& text,
                                   const std::vector<std::string>& class_names) {
  int32_t label = 0;
  if (absl::SimpleAtoi(text, &label)) {
    if (label < 0) return absl::InvalidArgumentError("--label must be >= 0");
    return label;
  }
  for (size_t i = 0; i < class_names.size(); ++i) {
    if (absl::AsciiStrToLower(class_names[i]) == absl::AsciiStrToLower(text)) {
      return static_cast<int32_t>(i);
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--label '", text, "' is neither a class index nor a class name"));
}

// (N,) for one query, (Q, N) for several, row-major.
absl::Status WriteScores(const std::string& path, const std::vector<QueryResult>& results) {
  const int64_t n = results.empty() ? 0 : static_cast<int64_t>(results[0].scores.size());
  std::vector<float> all;
  all.reserve(static_cast<size_t>(n) * results.size());
  for (const QueryResult& r : results) all.insert(all.end(), r.scores.begin(), r.scores.end());
  if (results.size() == 1) return WriteNpyF32(path, {n}, all.data());
  return WriteNpyF32(path, {static_cast<int64_t>(results.size()), n}, all.data());
}

absl::Status WriteHtml(const std::string& path, const AttributionBackend& backend,
                       const std::vector<QueryResult>& results,
                       const std::vector<std::string>& class_names, Method method) {
  ReportInput report;
  report.title = "tda: training images behind the predictions";
  report.results = results;
  report.class_names = class_names;
  report.method = MethodName(method);
  std::vector<std::string> ids;
  for (const QueryResult& r : results) {
    ids.push_back(r.query_id);
    for (const Hit& h : r.proponents) ids.push_back(h.id);
    for (const Hit& h : r.opponents) ids.push_back(h.id);
  }
  for (const std::string& id : ids) {
    if (report.features.count(id) != 0) continue;
    absl::StatusOr<SampleData> sample = backend.GetSample(id);
    if (!sample.ok()) return sample.status();
    report.features[id] = std::move(sample->features);
  }
  return WriteFileAtomically(path, RenderHtmlReport(report));
}

}  // namespace

int RunQuery(const Args& args) {
  FlagParser flags(
      "tda query",
      "(--server ADDR | --index DIR) (--id ID [--id ID ...] | --prompt TEXT --completion TEXT)"
      " [options]",
      "Finds the training samples with the largest influence on the loss of each query (an\n"
      "image by --id, or a prompt and completion for a language-model index): proponents\n"
      "(positive scores: removing them would raise the query's loss) and opponents (negative\n"
      "scores: removing them would lower it), and the scores summed per data source\n"
      "(and, with --by-document, per training document: the sum over its chunks).");
  AddConnectionFlags(flags, /*server_required=*/false,
                     "address of a running tda-server (host:port)");
  flags.AddString("index", "DIR", "", "index directory (offline, no server)");
  flags.AddString("index-name", "NAME", "",
                  "with --server: the served index to ask ('tda describe --server ADDR --list' "
                  "names them); optional when the server serves one");
  flags.AddRepeated("id", "ID", "query sample id, e.g. fashion-mnist/test/12");
  flags.AddString("prompt", "TEXT", "", "language-model index: the prompt of a text query");
  flags.AddBool("token-scores", "text queries: per-token influence within each listed document "
                "(shaded in a terminal)");
  flags.AddString("completion", "TEXT", "",
                  "language-model index: the completion whose log-loss given --prompt is measured "
                  "(e.g. from 'tda generate')");
  flags.AddString("label", "C", "",
                  "measure the loss of class C (index or name) instead of the true label");
  flags.AddInt("top-k", "K", 10, "proponents and opponents to show per query");
  flags.AddBool("by-document",
                "also rank whole documents by the sum of their rows' scores (a long document of "
                "a chunking model is several rows, <document id>#<k>)");
  flags.AddString("method", "M", "ekfac",
                  "ekfac, kfac, gradient-dot; lissa or exact for unprojected indexes");
  AddCurvatureFlags(flags);
  flags.AddBool("approximate",
                "top-k from the index's ANN ('tda index ann'), candidates re-scored exactly: "
                "fast on big indexes, may miss hits; no --scores-out, --by-document or "
                "per-source totals");
  flags.AddInt("nprobe", "N", 0, "--approximate, IVF ANN: lists probed (0: nlist / 16)");
  flags.AddInt("ef-search", "N", 0, "--approximate, HNSW ANN: search list size (0: 64)");
  flags.AddInt("candidates", "N", 0,
               "--approximate: rows fetched from the ANN per query and sign (0: 10 x top-k)");
  flags.AddInt(
      "query-rank", "R", 0,
      "many --id queries: rank them through the batch's top R directions (truncated SVD), "
      "then re-score each query's candidates exactly (every shown score exact, a hit "
      "may be missed; used when there are more queries than R; no --scores-out, "
      "--by-document or per-source totals). Measured on a 60,000-row index, 64 queries: R 8 "
      "takes 0.055 of the time of 64 single queries with recall@10 0.62, R 32 0.080 "
      "with recall 0.99 (the exact batch 0.13; README, Benchmarks)");
  flags.AddInt("low-rank-candidates", "C", 0,
               "--query-rank: rows re-scored exactly per query and sign (0: 10 x top-k)");
  flags.AddBool("unit-norm",
                "TrackStar: score q.P.g / (|q| |g|) (with --method gradient-dot: the cosine); "
                "not with --approximate or --query-rank");
  flags.AddBool("adam-correction",
                "correct the query's gradient with the model's Adam state as the rows were "
                "(an index built with --adam-correction)");
  flags.AddInt("ensemble-members", "K", 0,
               "ensemble indexes: score with the mean of the first K members (0 = all)");
  flags.AddBool("json", "print the AttributeResponse as JSON instead of tables");
  flags.AddString("scores-out", "FILE.npy", "",
                  "write every training row's score (float32; shape (N,) or (queries, N))");
  flags.AddString("html", "FILE", "", "write a self-contained HTML page with the images");
  flags.AddInt("threads", "N", 0, "compute threads for --index (0 = OMP_NUM_THREADS or all)");
  flags.AddNote(
      "Examples:\n  tda query --server 127.0.0.1:50051 --id fashion-mnist/test/12 --top-k 5\n"
      "  tda query --index fortunes-index --prompt 'Q: What is a computer?' \\\n"
      "      --completion ' A: a machine'");
  if (std::optional<int> exit = flags.ParseOrExit(args)) return *exit;

  const std::string index_dir = flags.GetString("index");
  if (flags.GetString("server").empty() == index_dir.empty()) {
    return flags.UsageError("give exactly one of --server ADDR or --index DIR");
  }
  absl::StatusOr<ConnectionOptions> server = ConnectionFromFlags(flags);
  if (!server.ok()) return flags.UsageError(std::string(server.status().message()));
  const std::vector<std::string> ids = flags.GetRepeated("id");
  const bool text_query = flags.IsSet("completion");
  if (ids.empty() && !text_query) return flags.UsageError("give at least one --id or --completion");
  if (text_query && (!ids.empty() || flags.GetString("completion").empty())) {
    return flags.UsageError("--completion needs a non-empty value and no --id");
  }
  AttributeOptions options;
  options.top_k = flags.GetInt("top-k");
  absl::StatusOr<Method> method = ParseMethod(flags.GetString("method"));
  if (!method.ok()) return flags.UsageError(std::string(method.status().message()));
  options.method = *method;
  if (absl::Status curvature = CurvatureFromFlags(flags, &options); !curvature.ok()) {
    return flags.UsageError(std::string(curvature.message()));
  }
  const std::string scores_out = flags.GetString("scores-out");
  const std::string html = flags.GetString("html");
  options.return_scores = !scores_out.empty();
  options.token_scores = flags.GetBool("token-scores");
  options.group_by_document = flags.GetBool("by-document");
  options.approximate.enabled = flags.GetBool("approximate");
  options.approximate.nprobe = flags.GetInt("nprobe");
  options.approximate.ef_search = flags.GetInt("ef-search");
  options.approximate.candidates = flags.GetInt("candidates");
  if (!options.approximate.enabled &&
      (flags.IsSet("nprobe") || flags.IsSet("ef-search") || flags.IsSet("candidates"))) {
    return flags.UsageError("--nprobe, --ef-search and --candidates need --approximate");
  }
  if (absl::Status s = ValidateApproximateSearch(options.approximate, options.top_k,
                                                 options.return_scores, options.group_by_document);
      !s.ok()) {
    return flags.UsageError(std::string(s.message()));
  }
  options.low_rank.rank = flags.GetInt("query-rank");
  options.low_rank.candidates = flags.GetInt("low-rank-candidates");
  if (absl::Status s =
          ValidateLowRankQueries(options.low_rank, options.top_k, options.return_scores,
                                 options.group_by_document, options.approximate.enabled);
      !s.ok()) {
    return flags.UsageError(absl::StrCat(
        "--query-rank / --low-rank-candidates: ", s.message(),
        " (flags: return_scores is --scores-out, group_by_document --by-document, approximate "
        "search --approximate)"));
  }
  options.unit_norm = flags.GetBool("unit-norm");
  options.adam_correction = flags.GetBool("adam-correction");
  options.ensemble_members = flags.GetInt("ensemble-members");
  if (options.ensemble_members < 0) return flags.UsageError("--ensemble-members must be >= 0");
  if (options.unit_norm && (options.approximate.enabled || options.low_rank.enabled())) {
    return flags.UsageError(
        "--unit-norm ranks every row by its normalised score; it does not "
        "combine with --approximate or --query-rank");
  }
  if (flags.GetInt("threads") < 0) return flags.UsageError("--threads must be >= 0");
  if (!index_dir.empty()) InitCompute(static_cast<int>(flags.GetInt("threads")));

  absl::StatusOr<std::unique_ptr<AttributionBackend>> backend =
      OpenBackend(*server, index_dir, flags.GetString("index-name"));
  if (!backend.ok()) return RuntimeError(backend.status());
  absl::StatusOr<v1::DescribeIndexResponse> description = (*backend)->Describe();
  if (!description.ok()) return RuntimeError(description.status());
  const std::vector<std::string> class_names(description->class_names().begin(),
                                             description->class_names().end());
  int32_t label = -1;
  if (flags.IsSet("label")) {
    absl::StatusOr<int32_t> parsed = ParseLabel(flags.GetString("label"), class_names);
    if (!parsed.ok()) return flags.UsageError(std::string(parsed.status().message()));
    label = *parsed;
  }
  std::vector<Query> queries;
  for (const std::string& id : ids) {
    Query query;
    query.sample_id = id;
    query.label = label;
    queries.push_back(std::move(query));
  }
  if (text_query) {
    Query query;
    query.text = TextQuery{flags.GetString("prompt"), flags.GetString("completion")};
    queries.push_back(std::move(query));
  }

  if (options.low_rank.enabled() &&
      !LowRankPays(static_cast<int64_t>(queries.size()), options.low_rank.rank)) {
    std::cerr << "note: --query-rank " << options.low_rank.rank
              << " is not below the number of queries (" << queries.size()
              << "); every row is scored exactly\n";
  }
  absl::StatusOr<std::vector<QueryResult>> results;
  {
    // In this process, LiSSA's recursion (seconds to minutes) shows its steps and residual.
    ProgressBar bar;
    if (!index_dir.empty()) options.lissa.progress = bar.Callback();
    results = (*backend)->Attribute(queries, options);
  }
  if (!results.ok()) return RuntimeError(results.status());
  if (flags.GetBool("json")) {
    std::cout << FormatResultsJson(*results, options.method, description->rows());
  } else {
    std::cout << FormatResultsTable(*results, class_names, isatty(STDOUT_FILENO) != 0);
  }
  if (!scores_out.empty()) {
    if (absl::Status s = WriteScores(scores_out, *results); !s.ok()) return RuntimeError(s);
    std::cerr << "scores written to " << scores_out << "\n";
  }
  if (!html.empty()) {
    absl::Status s = WriteHtml(html, **backend, *results, class_names, options.method);
    if (!s.ok()) return RuntimeError(s);
    std::cerr << "report written to " << html << "\n";
  }
  return 0;
}

}  // namespace tda
