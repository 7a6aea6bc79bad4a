// tda eval loo | lds: how faithful each attribution method is, measured on real
// Fashion-MNIST by retraining (src/ablation). Both train their own model from
// scratch with the given sizes, so a small run takes seconds and a full run is
// a benchmark.
#include <algorithm>
#include <cmath>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "ablation/lds.h"
#include "ablation/method_scores.h"
#include "ops/lds_experiment.h"
#include "ops/loo_experiment.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/commands.h"
#include "common/flags.h"
#include "common/status_macros.h"
#include "client/progress_bar.h"
#include "common/statistics.h"
#include "curvature/exact.h"
#include "data/fashion_mnist.h"
#include "model/model.h"

namespace tda {
namespace {

// One row of the result table.
struct Row {
  std::string method;
  double value = 0;  // LOO Pearson or LDS
  double seconds = 0;
  int64_t peak_bytes = 0;
  std::string detail;
  double vs_exact = NAN;  // mean over queries of Pearson(scores, exact scores); NaN: no exact
};

// Fills vs_exact of every row when one of the methods is exact (`scores`
// parallel to `rows`).
void CompareWithExact(const std::vector<Eigen::MatrixXd>& scores, std::vector<Row>& rows) {
  for (size_t e = 0; e < rows.size(); ++e) {
    if (rows[e].method != MethodName(Method::kExact)) continue;
    for (size_t m = 0; m < rows.size(); ++m) {
      double sum = 0;
      for (Eigen::Index q = 0; q < scores[m].cols(); ++q) {
        sum += Pearson(Eigen::VectorXd(scores[m].col(q)), Eigen::VectorXd(scores[e].col(q)));
      }
      rows[m].vs_exact = sum / static_cast<double>(scores[m].cols());
    }
  }
}

// "auto": ekfac, kfac, gradient-dot, and exact + lissa when the model has at
// most kMaxExactParameters parameters.
absl::StatusOr<std::vector<Method>> ParseMethods(const std::string& text, int64_t params) {
  std::vector<Method> out;
  if (text == "auto") {
    out = {Method::kEkfac, Method::kKfac, Method::kGradientDot};
    if (params <= kMaxExactParameters) out.insert(out.end(), {Method::kExact, Method::kLissa});
    return out;
  }
  for (absl::string_view name : absl::StrSplit(text, ',')) {
    absl::StatusOr<Method> m = ParseMethod(std::string(name));
    if (!m.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--methods: unknown method '", std::string(name),
                       "' (use ekfac, kfac, gradient-dot, exact, lissa, "
                       "separated by commas, or auto)"));
    }
    out.push_back(*m);
  }
  return out;
}

// Loads the first n train / test images at the requested resolution.
absl::Status LoadData(const FlagParser& flags, int64_t n_train, int64_t n_test, Dataset* train,
                      Dataset* test) {
  const std::string dir = flags.GetString("data-dir");
  const int64_t side = flags.GetInt("side");
  ASSIGN_OR_RETURN(*train, LoadFashionMnistAtSide(dir, Split::kTrain, n_train, side));
  ASSIGN_OR_RETURN(*test, LoadFashionMnistAtSide(dir, Split::kTest, n_test, side));
  return absl::OkStatus();
}

void AddCommonFlags(FlagParser& flags, int64_t train_size, int64_t epochs, double weight_decay) {
  flags.AddInt("train-size", "N", train_size, "first N Fashion-MNIST training images");
  flags.AddInt("side", "S", 14, "downsample images to SxS (7, 14 or 28)");
  flags.AddInt("epochs", "N", epochs, "Adam epochs of every training run");
  flags.AddDouble("weight-decay", "X", weight_decay, "L2 coefficient of the training objective");
  flags.AddString("methods", "LIST", "auto",
                  "ekfac,kfac,gradient-dot,exact,lissa (any of them); auto = "
                  "the first three, "
                  "+ exact and lissa up to 20000 parameters");
  flags.AddInt("seed", "N", 0, "seed of initialisation, shuffling and sampling");
  flags.AddBool("json", "print the result as JSON");
  flags.AddString("data-dir", "DIR", kFashionMnistDefaultDir, "Fashion-MNIST IDX files");
  flags.AddInt("threads", "N", 0, "compute threads (0 = OMP_NUM_THREADS or all cores)");
}

absl::Status CheckCommonFlags(const FlagParser& flags) {
  const int64_t side = flags.GetInt("side");
  if (side != 7 && side != 14 && side != 28)
    return absl::InvalidArgumentError("--side: 7, 14 or 28");
  if (flags.GetInt("train-size") < 4)
    return absl::InvalidArgumentError("--train-size must be >= 4");
  if (flags.GetInt("epochs") < 1) return absl::InvalidArgumentError("--epochs must be >= 1");
  if (!(flags.GetDouble("weight-decay") >= 0)) {
    return absl::InvalidArgumentError("--weight-decay must be >= 0");
  }
  if (flags.GetInt("threads") < 0) return absl::InvalidArgumentError("--threads must be >= 0");
  return absl::OkStatus();
}

std::string FormatBytes(int64_t bytes) {
  return absl::StrFormat("%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
}

// Table (or JSON) of per-method results, after a one-paragraph settings line.
void PrintRows(const std::string& what, const std::string& settings, const std::vector<Row>& rows,
               bool json, const std::string& json_extra) {
  if (json) {
    std::vector<std::string> items;
    for (const Row& r : rows) {
      items.push_back(
          absl::StrFormat("{\"method\": \"%s\", \"%s\": %.6f, \"pearson_vs_exact\": %s, "
                          "\"seconds\": %.4f, "
                          "\"peak_bytes\": %d, \"detail\": \"%s\"}",
                          r.method, what == "LDS" ? "lds" : "loo_pearson", r.value,
                          std::isnan(r.vs_exact) ? "null" : absl::StrFormat("%.6f", r.vs_exact),
                          r.seconds, r.peak_bytes, r.detail));
    }
    std::cout << "{" << json_extra << ", \"methods\": [" << absl::StrJoin(items, ", ") << "]}\n";
    return;
  }
  std::cout << settings << "\n\n";
  std::cout << absl::StrFormat("%-13s %12s %9s %10s %12s  %s\n", "method",
                               what == "LDS" ? "LDS" : "LOO Pearson", "vs exact", "wall time",
                               "peak memory", "settings");
  for (const Row& r : rows) {
    std::cout << absl::StrFormat("%-13s %12.4f %9s %9.2fs %12s  %s\n", r.method, r.value,
                                 std::isnan(r.vs_exact) ? "-" : absl::StrFormat("%.4f", r.vs_exact),
                                 r.seconds, FormatBytes(r.peak_bytes), r.detail);
  }
  std::cout << "(vs exact: Pearson of the method's scores with exact's, mean "
               "over queries;\n"
               " wall time and peak memory: computing the method's scores of "
               "every training\n"
               " sample for the queries, from fitting its curvature to the "
               "last dot product)\n";
}

int RunLoo(const Args& args) {
  FlagParser flags("tda eval loo", "[options]",
                   "Leave-one-out ground truth (Koh & Liang 2017) on "
                   "Fashion-MNIST multinomial logistic\n"
                   "regression with L2: trains the model, converges it by "
                   "Newton-CG, picks the test query\n"
                   "with the highest loss, retrains without each of the top-k "
                   "samples (by the first\n"
                   "method's predicted influence) and some random ones, and "
                   "prints per method the Pearson\n"
                   "correlation of predicted vs actual change of the query "
                   "loss. Every method inverts the\n"
                   "Hessian + weight-decay I of the mean loss.");
  AddCommonFlags(flags, 1000, 3, 0.01);
  flags.AddInt("query", "I", -1, "test image to attribute (-1: highest loss of the first 20)");
  flags.AddInt("top-k", "K", 20, "retrain without the K most influential samples");
  flags.AddInt("random", "R", 20, "and R random others");
  flags.AddNote(
      "Example: tda eval loo --train-size 1000 --side 14 --methods "
      "exact,lissa,ekfac");
  if (std::optional<int> exit = flags.ParseOrExit(args)) return *exit;
  if (absl::Status s = CheckCommonFlags(flags); !s.ok())
    return flags.UsageError(std::string(s.message()));
  const double wd = flags.GetDouble("weight-decay");
  if (!(wd > 0))
    return flags.UsageError("leave-one-out needs --weight-decay > 0 (a convex objective)");
  InitCompute(static_cast<int>(flags.GetInt("threads")));

  Dataset train, test;
  const int64_t n_test = std::max<int64_t>(20, flags.GetInt("query") + 1);
  if (absl::Status s = LoadData(flags, flags.GetInt("train-size"), n_test, &train, &test); !s.ok())
    return RuntimeError(s);
  LooExperiment experiment;
  experiment.recipe.epochs = flags.GetInt("epochs");
  experiment.recipe.batch_size = 64;
  experiment.recipe.weight_decay = wd;
  experiment.recipe.seed = static_cast<uint64_t>(flags.GetInt("seed"));
  experiment.query = flags.GetInt("query");
  experiment.top_k = flags.GetInt("top-k");
  experiment.random = flags.GetInt("random");
  // Logistic regression: the parameter count decides which methods "auto" includes.
  const int64_t parameters = (train.feature_dim + 1) * 10;
  absl::StatusOr<std::vector<Method>> methods =
      ParseMethods(flags.GetString("methods"), parameters);
  if (!methods.ok()) return flags.UsageError(std::string(methods.status().message()));
  experiment.methods = *methods;

  ProgressBar bar;
  absl::StatusOr<LooExperimentResult> result =
      RunLooExperiment(experiment, train, test, bar.Callback());
  if (!result.ok()) return RuntimeError(result.status());
  bar.Finish();
  std::vector<Row> rows;
  std::vector<Eigen::MatrixXd> all_scores;
  for (size_t i = 0; i < result->scores.size(); ++i) {
    const MethodScores& m = result->scores[i];
    rows.push_back(
        {MethodName(m.method), result->loo.pearson[i], m.seconds, m.peak_bytes, m.detail});
    all_scores.push_back(m.scores);
  }
  CompareWithExact(all_scores, rows);
  const int64_t query = result->query;
  const std::string settings_text = absl::StrFormat(
      "leave-one-out: logistic regression %d-10 (%d parameters), N = %d, "
      "weight decay %g;\n"
      "query fashion-mnist/test/%d (loss %.4f); %d retrainings (top %d by %s + "
      "%d random)",
      train.feature_dim, result->parameters, train.size(), wd, query, result->loo.query_loss,
      result->loo.removed.size(), experiment.top_k, rows[0].method, experiment.random);
  const std::string json_extra = absl::StrFormat(
      "\"experiment\": \"loo\", \"train_size\": %d, \"side\": %d, "
      "\"weight_decay\": %g, "
      "\"query\": \"fashion-mnist/test/%d\", \"query_loss\": %.6f, "
      "\"retrainings\": %d",
      train.size(), flags.GetInt("side"), wd, query, result->loo.query_loss,
      result->loo.removed.size());
  PrintRows("LOO", settings_text, rows, flags.GetBool("json"), json_extra);
  return 0;
}

int RunLds(const Args& args) {
  FlagParser flags("tda eval lds", "[options]",
                   "Linear datamodeling score (TRAK / dattri protocol) on Fashion-MNIST: "
                   "trains a model on\n"
                   "N images, retrains it from scratch on M random subsets of fraction "
                   "alpha, and prints per\n"
                   "method the Spearman correlation (over subsets, averaged over test "
                   "queries) between the\n"
                   "retrained query loss and the summed influence scores of the samples "
                   "each subset leaves\n"
                   "out (positive = faithful), with the wall time and peak memory of the "
                   "method's scores.\n"
                   "All methods use the same damping: weight decay + 0.1 x mean EK-FAC "
                   "eigenvalue unless\n"
                   "--damping is given; exact and lissa use the Gauss-Newton matrix. Train "
                   "to convergence\n"
                   "(the default 40 epochs): influence functions assume an optimum.");
  AddCommonFlags(flags, 1000, 40, 1e-3);
  flags.AddString("hidden", "W[,W...]", "16", "hidden layer widths ('none': logistic regression)");
  flags.AddInt("queries", "Q", 20, "first Q test images are the queries");
  flags.AddInt("subsets", "M", 50, "random training subsets (the protocol's default is 100)");
  flags.AddDouble("alpha", "X", 0.5, "fraction of the training set in each subset");
  flags.AddInt("seeds", "K", 1, "retrainings per subset (different seeds), averaged");
  flags.AddDouble("lr", "X", 1e-3, "Adam learning rate");
  flags.AddInt("batch-size", "N", 64, "minibatch size");
  flags.AddDouble("damping", "X", -1, "absolute damping of every method (-1: the default above)");
  flags.AddNote(
      "Example: tda eval lds --methods ekfac,kfac,gradient-dot,exact --subsets "
      "50 --queries 20");
  if (std::optional<int> exit = flags.ParseOrExit(args)) return *exit;
  if (absl::Status s = CheckCommonFlags(flags); !s.ok())
    return flags.UsageError(std::string(s.message()));
  ModelConfig config;
  if (absl::Status s = ParseLayerWidths(flags.GetString("hidden"), &config.hidden); !s.ok())
    return flags.UsageError(std::string(s.message()));
  if (flags.GetInt("queries") < 1) return flags.UsageError("--queries must be >= 1");
  LdsOptions options;
  options.subsets = flags.GetInt("subsets");
  options.alpha = flags.GetDouble("alpha");
  options.seeds_per_subset = flags.GetInt("seeds");
  options.seed = static_cast<uint64_t>(flags.GetInt("seed"));
  if (absl::Status s = ValidateLdsOptions(options, flags.GetInt("train-size")); !s.ok())
    return flags.UsageError(std::string(s.message()));
  InitCompute(static_cast<int>(flags.GetInt("threads")));

  Dataset train, queries;
  if (absl::Status s =
          LoadData(flags, flags.GetInt("train-size"), flags.GetInt("queries"), &train, &queries);
      !s.ok())
    return RuntimeError(s);
  config.input_dim = train.feature_dim;
  LdsExperiment experiment;
  experiment.config = config;
  experiment.lds = options;
  experiment.recipe.epochs = flags.GetInt("epochs");
  experiment.recipe.batch_size = flags.GetInt("batch-size");
  experiment.recipe.learning_rate = flags.GetDouble("lr");
  experiment.recipe.weight_decay = flags.GetDouble("weight-decay");
  experiment.recipe.seed = options.seed;
  if (flags.GetDouble("damping") >= 0) experiment.damping = flags.GetDouble("damping");
  {
    // The parameter count decides which methods "auto" includes.
    absl::StatusOr<std::unique_ptr<Model>> model = CreateModel(config, options.seed);
    if (!model.ok()) return RuntimeError(model.status());
    absl::StatusOr<std::vector<Method>> methods =
        ParseMethods(flags.GetString("methods"), (*model)->layout().total());
    if (!methods.ok()) return flags.UsageError(std::string(methods.status().message()));
    experiment.methods = *methods;
  }
  const TrainRecipe& recipe = experiment.recipe;

  ProgressBar bar;
  absl::StatusOr<LdsExperimentResult> lds =
      RunLdsExperiment(experiment, train, queries, bar.Callback());
  if (!lds.ok()) return RuntimeError(lds.status());
  std::vector<Row> rows;
  std::vector<Eigen::MatrixXd> all_scores;
  for (LdsMethodResult& m : lds->methods) {
    rows.push_back({MethodName(m.scores.method), m.lds.mean, m.scores.seconds,
                    m.scores.peak_bytes, m.scores.detail});
    all_scores.push_back(std::move(m.scores.scores));
  }
  CompareWithExact(all_scores, rows);
  bar.Finish();
  const std::string arch =
      config.hidden.empty()
          ? absl::StrCat("logistic regression ", config.input_dim, "-10")
          : absl::StrCat("MLP ", config.input_dim, "-", absl::StrJoin(config.hidden, "-"), "-10");
  const std::string settings_text = absl::StrFormat(
      "LDS: %s (%d parameters), N = %d, %d epochs, weight decay %g; %d subsets "
      "of %g x %d "
      "seed(s); %d queries; retraining %.1f s; damping %.4g",
      arch, lds->parameters, train.size(), recipe.epochs, recipe.weight_decay, options.subsets,
      options.alpha, options.seeds_per_subset, queries.size(), lds->retrain_seconds, lds->damping);
  const std::string json_extra = absl::StrFormat(
      "\"experiment\": \"lds\", \"model\": \"%s\", \"train_size\": %d, "
      "\"side\": %d, "
      "\"epochs\": %d, \"weight_decay\": %g, \"subsets\": %d, \"alpha\": %g, "
      "\"seeds\": %d, "
      "\"queries\": %d, \"damping\": %g, \"retrain_seconds\": %.3f",
      arch, train.size(), flags.GetInt("side"), recipe.epochs, recipe.weight_decay, options.subsets,
      options.alpha, options.seeds_per_subset, queries.size(), lds->damping,
      lds->retrain_seconds);
  PrintRows("LDS", settings_text, rows, flags.GetBool("json"), json_extra);
  return 0;
}

}  // namespace

int RunEval(const Args& args) {
  constexpr char kUsage[] =
      "Usage: tda eval <loo|lds> [options]\n"
      "\n"
      "How faithful each attribution method is, measured by retraining on "
      "Fashion-MNIST:\n"
      "  loo   leave-one-out retraining on logistic regression: Pearson of "
      "predicted vs actual\n"
      "  lds   linear datamodeling score over random training subsets (TRAK / "
      "dattri)\n"
      "\n"
      "Run 'tda eval loo --help' or 'tda eval lds --help' for the flags.\n";
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    (args.empty() ? std::cerr : std::cout) << kUsage;
    return args.empty() ? 2 : 0;
  }
  const Args rest(args.begin() + 1, args.end());
  if (args[0] == "loo") return RunLoo(rest);
  if (args[0] == "lds") return RunLds(rest);
  std::cerr << "tda: error: unknown eval subcommand '" << args[0] << "'\n\n" << kUsage;
  return 2;
}

}  // namespace tda
