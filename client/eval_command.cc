// tda eval loo | lds: how faithful each attribution method is, measured on real
// Fashion-MNIST (or a tensors corpus: --data X.npy --labels Y.npy) by retraining
// (src/ablation). Both train their own model from scratch with the settings of a protocol
// preset (--protocol tda | dattri, --model lr | mlp; ablation/eval_protocol.h), any flag
// given overriding its field; the evaluation itself is ops/eval_run.h, shared with the
// `eval` job kind.
#include <algorithm>
#include <cmath>
#include <iostream>
#include <string>
#include <vector>

#include "ablation/ensemble_scores.h"
#include "ablation/eval_protocol.h"
#include "ablation/retrain_cache.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/commands.h"
#include "client/progress_bar.h"
#include "client/tensor_flags.h"
#include "common/flags.h"
#include "common/status_macros.h"
#include "data/fashion_mnist.h"
#include "data/fortunes.h"
#include "ops/eval_run.h"

namespace tda {
namespace {

// The run's train / test samples: of the tensors corpus of --data, else the preset's data set
// (LoadPresetData: Fashion-MNIST images, or fortunes for --model gpt) from --data-dir; sets
// run->data_path to where they came from.
absl::Status LoadData(const FlagParser& flags, EvalRun* run, Dataset* train, Dataset* test) {
  const int64_t n_train = run->setup.train_size, n_test = EvalTestRows(*run);
  ASSIGN_OR_RETURN(std::optional<TensorCorpusFiles> tensors, TensorCorpusFromFlags(flags));
  if (tensors.has_value() && run->setup.config.is_sequence()) {
    return absl::InvalidArgumentError(
        "--data is a tensors corpus of classification rows; "
        "--model gpt evaluates on the fortunes (--data-dir)");
  }
  if (tensors.has_value()) {
    const double held_out = flags.GetDouble("held-out-fraction");
    ASSIGN_OR_RETURN(*train, LoadTensorCorpus(*tensors, Split::kTrain, n_train, held_out));
    ASSIGN_OR_RETURN(*test, LoadTensorCorpus(*tensors, Split::kTest, n_test, held_out));
    if (train->size() < n_train || test->size() < n_test) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the corpus of --data has ", train->size(), " training and ", test->size(),
          " held-out samples; the experiment asks for ", n_train, " and ", n_test));
    }
    run->data_path = absl::StrCat(tensors->features, ",", tensors->labels);
    return absl::OkStatus();
  }
  return LoadPresetData(run, flags.IsSet("data-dir") ? flags.GetString("data-dir") : "", train,
                        test);
}

// Flags shared by loo and lds. Defaults shown are those of --protocol tda; a flag given
// overrides the preset's value.
void AddCommonFlags(FlagParser& flags, const std::string& experiment,
                    const std::string& default_model) {
  flags.AddString("protocol", "P", "tda",
                  "settings preset: tda (tda's own) or dattri (the dattri benchmark's)");
  flags.AddString("model", "M", default_model,
                  experiment == "lds"
                      ? "lr (logistic regression), mlp or gpt (a language model on the fortunes), "
                        "as the protocol defines them"
                      : "lr (logistic regression) or mlp, as the protocol defines them");
  flags.AddInt("train-size", "N", 1000, "first N training samples");
  flags.AddInt("side", "S", 14, "Fashion-MNIST: downsample images to SxS (7, 14 or 28)");
  flags.AddString("optimizer", "NAME", "adam", "adam, sgd or adamw, of every training run");
  flags.AddDouble("lr", "X", 1e-3, "learning rate");
  flags.AddDouble("momentum", "X", 0.9, "SGD momentum");
  flags.AddInt("epochs", "N", experiment == "loo" ? 3 : 40, "epochs of every training run");
  flags.AddInt("batch-size", "N", 64, "minibatch size");
  flags.AddDouble("weight-decay", "X", experiment == "loo" ? 0.01 : 1e-3,
                  "L2 coefficient of the training objective");
  flags.AddString("methods", "LIST", "auto",
                  "ekfac,kfac,gradient-dot,exact,lissa (any of them); auto = the first three, "
                  "+ exact and lissa up to 20000 parameters");
  flags.AddInt("seed", "N", 0, "seed of initialisation, shuffling and sampling");
  flags.AddBool("json", "print the result as JSON");
  flags.AddString("data-dir", "DIR", kFashionMnistDefaultDir,
                  "Fashion-MNIST IDX files (--model gpt: the fortunes directory, default " +
                      std::string(kFortunesDefaultDir) + ")");
  flags.AddString("data", "FEATURES.npy", "",
                  "evaluate on a tensors corpus instead of Fashion-MNIST: features (N, D)");
  AddTensorCorpusFlags(&flags);
  flags.AddInt("threads", "N", 0, "compute threads (0 = OMP_NUM_THREADS or all cores)");
}

// The protocol's preset with every flag given on the command line applied over it.
absl::StatusOr<EvalRun> RunFromFlags(const FlagParser& flags, const std::string& experiment) {
  EvalRun run;
  run.experiment = experiment;
  run.protocol = flags.GetString("protocol");
  ASSIGN_OR_RETURN(run.setup, ProtocolSetup(run.protocol, experiment, flags.GetString("model")));
  EvalSetup& s = run.setup;
  TrainRecipe& r = s.recipe;
  if (flags.IsSet("train-size")) s.train_size = flags.GetInt("train-size");
  if (flags.IsSet("side")) s.side = flags.GetInt("side");
  if (flags.IsSet("optimizer")) r.optimizer = flags.GetString("optimizer");
  if (flags.IsSet("lr")) r.learning_rate = flags.GetDouble("lr");
  if (flags.IsSet("momentum")) r.momentum = flags.GetDouble("momentum");
  if (flags.IsSet("epochs")) r.epochs = flags.GetInt("epochs");
  if (flags.IsSet("batch-size")) r.batch_size = flags.GetInt("batch-size");
  if (flags.IsSet("weight-decay")) r.weight_decay = flags.GetDouble("weight-decay");
  r.seed = static_cast<uint64_t>(flags.GetInt("seed"));
  s.lds.seed = r.seed;
  run.methods = flags.GetString("methods");
  if (!s.config.is_sequence() && s.side != 7 && s.side != 14 && s.side != 28) {
    return absl::InvalidArgumentError("--side: 7, 14 or 28");
  }
  if (s.train_size < 4) return absl::InvalidArgumentError("--train-size must be >= 4");
  if (r.epochs < 1) return absl::InvalidArgumentError("--epochs must be >= 1");
  if (r.batch_size < 1) return absl::InvalidArgumentError("--batch-size must be >= 1");
  if (!(r.learning_rate > 0)) return absl::InvalidArgumentError("--lr must be > 0");
  if (r.optimizer != "adam" && r.optimizer != "sgd" && r.optimizer != "adamw") {
    return absl::InvalidArgumentError("--optimizer: adam, sgd or adamw");
  }
  if (!(r.weight_decay >= 0)) return absl::InvalidArgumentError("--weight-decay must be >= 0");
  if (flags.GetInt("threads") < 0) return absl::InvalidArgumentError("--threads must be >= 0");
  return run;
}

std::string FormatBytes(int64_t bytes) {
  return absl::StrFormat("%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
}

// Table (or JSON) of the report.
void PrintReport(const EvalReport& report, const std::string& value_name, bool json) {
  if (json) {
    std::cout << report.json << "\n";
    return;
  }
  std::cout << report.settings << "\n\n";
  const bool ensemble = !report.rows.empty() && !report.rows[0].ensemble_curve.empty();
  std::cout << absl::StrFormat("%-13s %12s %s%9s %10s %12s  %s\n", "method", value_name,
                               ensemble ? "members' mean " : "", "vs exact", "wall time",
                               "peak memory", "settings");
  for (const EvalRow& r : report.rows) {
    std::cout << absl::StrFormat("%-13s %12.4f %s%9s %9.2fs %12s  %s\n", r.method, r.value,
                                 ensemble ? absl::StrFormat("%13.4f ", r.members_mean) : "",
                                 r.has_vs_exact ? absl::StrFormat("%.4f", r.vs_exact) : "-",
                                 r.seconds, FormatBytes(r.peak_bytes), r.detail);
  }
  if (ensemble) {
    std::cout << "\nLDS of the ensemble of the first k models:\n";
    for (const EvalRow& r : report.rows) {
      std::cout << absl::StrFormat("%-13s", r.method);
      for (size_t k = 0; k < r.ensemble_curve.size(); ++k) {
        std::cout << absl::StrFormat(" %d: %.4f", k + 1, r.ensemble_curve[k]);
      }
      std::cout << "\n";
    }
  }
  std::cout << "(vs exact: Pearson of the method's scores with exact's, mean over queries;\n"
               " wall time and peak memory: computing the method's scores of every training\n"
               " sample for the queries, from fitting its curvature to the last dot product"
            << (ensemble ? ",\n summed over the models (peak: the largest model's); members' mean:"
                           " the mean of\n the models' own LDS)\n"
                         : ")\n");
}

// Loads the data, runs the evaluation with a progress bar, prints it.
int RunAndPrint(const FlagParser& flags, EvalRun run, const std::string& value_name) {
  InitCompute(static_cast<int>(flags.GetInt("threads")));
  Dataset train, test;
  if (absl::Status s = LoadData(flags, &run, &train, &test); !s.ok()) {
    return RuntimeError(s);
  }
  ProgressBar bar;
  absl::StatusOr<EvalReport> report = RunEval(run, train, test, bar.Callback());
  if (!report.ok()) return RuntimeError(report.status());
  bar.Finish();
  PrintReport(*report, value_name, flags.GetBool("json"));
  return 0;
}

int RunLoo(const Args& args) {
  FlagParser flags(
      "tda eval loo", "[options]",
      "Leave-one-out ground truth (Koh & Liang 2017) on Fashion-MNIST (or --data X.npy\n"
      "--labels Y.npy) multinomial logistic regression with L2: trains the model, converges\n"
      "it by Newton-CG, picks the test query with the highest loss, retrains without each of\n"
      "the top-k samples (by the first method's predicted influence) and some random ones,\n"
      "and prints per method the Pearson correlation of predicted vs actual change of the\n"
      "query loss. Every method inverts the Hessian + weight-decay I of the mean loss.");
  AddCommonFlags(flags, "loo", "lr");
  flags.AddInt("query", "I", -1, "test image to attribute (-1: highest loss of the first 20)");
  flags.AddInt("top-k", "K", 20, "retrain without the K most influential samples");
  flags.AddInt("random", "R", 20, "and R random others");
  flags.AddNote(absl::StrCat(
      "Presets (flags given override them):\n", DescribeProtocols("loo"),
      "\ndattri's LOO retrains SGD runs without each sample; here the objective is made\n"
      "convex (weight decay 0.01) and solved exactly by Newton-CG, since an SGD run without\n"
      "one sample differs from the full run by less than its seed noise.\n"
      "Example: tda eval loo --protocol dattri --methods exact,ekfac,kfac,gradient-dot"));
  if (std::optional<int> exit = flags.ParseOrExit(args)) return *exit;
  absl::StatusOr<EvalRun> run = RunFromFlags(flags, "loo");
  if (!run.ok()) return flags.UsageError(std::string(run.status().message()));
  if (!(run->setup.recipe.weight_decay > 0)) {
    return flags.UsageError("leave-one-out needs --weight-decay > 0 (a convex objective)");
  }
  run->query = flags.GetInt("query");
  run->top_k = flags.GetInt("top-k");
  run->random = flags.GetInt("random");
  return RunAndPrint(flags, *std::move(run), "LOO Pearson");
}

int RunLds(const Args& args) {
  FlagParser flags(
      "tda eval lds", "[options]",
      "Linear datamodeling score (TRAK / dattri protocol) on Fashion-MNIST (or --data): trains\n"
      "a model on N images, retrains it from scratch on M random subsets of fraction alpha,\n"
      "and prints per method the Spearman correlation (over subsets, averaged over test\n"
      "queries) between the retrained query measurement and the summed influence scores of\n"
      "the samples each subset leaves out (positive = faithful), with the wall time and peak\n"
      "memory of the method's scores. The measurement is loss-like either way: the loss\n"
      "-log p_y, or the negated margin -log(p_y / (1 - p_y)) (TRAK's margin with tda's sign:\n"
      "score > 0 means removing the sample raises it); the query gradients of every method\n"
      "are those of the measurement, the training gradients those of the training loss.\n"
      "(Per query the negated margin is an increasing function of the loss and its gradient\n"
      "a positive multiple of the loss's, so the LDS, a per-query rank correlation, is the\n"
      "same for both up to rounding; the margin matters to ensembles such as TRAK's.)\n"
      "All methods use the same damping: weight decay + 0.1 x mean EK-FAC eigenvalue unless\n"
      "--damping is given; exact and lissa use the Gauss-Newton matrix. The retrainings are\n"
      "saved (--retrain-cache) and reused by any later run of the same recipe.");
  AddCommonFlags(flags, "lds", "mlp");
  flags.AddString("hidden", "W[,W...]", "16", "hidden layer widths ('none': logistic regression)");
  flags.AddDouble("dropout", "P", 0, "mlp dropout in training, in [0, 1)");
  flags.AddInt("queries", "Q", 20, "first Q test images are the queries");
  flags.AddInt("subsets", "M", 50, "random training subsets (dattri's retrain_lds: 100)");
  flags.AddDouble("alpha", "X", 0.5, "fraction of the training set in each subset");
  flags.AddInt("seeds", "K", 1, "retrainings per subset (different seeds), averaged");
  flags.AddString("measurement", "NAME", "loss",
                  "loss (-log p_y), mean (the loss per target token: the loss for images) or "
                  "margin (-log(p_y / (1 - p_y)))");
  flags.AddDouble("damping", "X", -1, "absolute damping of every method (-1: the default above)");
  flags.AddInt("ensemble", "E", 1,
               "score the mean of E models (seeds seed..seed+E-1); subset models stay single");
  flags.AddBool("unit-norm",
                "TrackStar: every method's scores unit-normalised (query gradient scaled to unit "
                "norm, each score divided by the training gradient's norm), as tda query "
                "--unit-norm scores an index");
  flags.AddString("retrain-cache", "DIR", "",
                  "saved retrainings and trained models ('' = $TDA_CACHE_DIR/retrainings or "
                  "~/.cache/tda/retrainings; 'none' = do not save)");
  flags.AddNote(absl::StrCat(
      "Presets (flags given override them):\n", DescribeProtocols("lds"),
      "\nWhere --protocol dattri differs from dattri's MNIST benchmark: the data set is\n"
      "Fashion-MNIST (Debian ships no MNIST), pixels are scaled to [0, 1] rather than\n"
      "normalised by MNIST's mean and deviation.\n"
      "Example: tda eval lds --protocol dattri --model lr --methods ekfac,kfac,gradient-dot\n"
      "Ensemble: tda eval lds --protocol dattri --model mlp --ensemble 5 --methods ekfac"));
  if (std::optional<int> exit = flags.ParseOrExit(args)) return *exit;
  absl::StatusOr<EvalRun> run = RunFromFlags(flags, "lds");
  if (!run.ok()) return flags.UsageError(std::string(run.status().message()));
  EvalSetup& s = run->setup;
  if (flags.IsSet("hidden")) {
    if (absl::Status st = ParseLayerWidths(flags.GetString("hidden"), &s.config.hidden); !st.ok())
      return flags.UsageError(std::string(st.message()));
  }
  if (flags.IsSet("dropout")) s.config.dropout = flags.GetDouble("dropout");
  if (!(s.config.dropout >= 0 && s.config.dropout < 1)) {
    return flags.UsageError("--dropout must be in [0, 1)");
  }
  if (flags.IsSet("queries")) s.queries = flags.GetInt("queries");
  if (s.queries < 1) return flags.UsageError("--queries must be >= 1");
  if (flags.IsSet("subsets")) s.lds.subsets = flags.GetInt("subsets");
  if (flags.IsSet("alpha")) s.lds.alpha = flags.GetDouble("alpha");
  s.lds.seeds_per_subset = flags.GetInt("seeds");
  absl::StatusOr<Measurement> measurement = ParseMeasurement(flags.GetString("measurement"));
  if (!measurement.ok()) return flags.UsageError(std::string(measurement.status().message()));
  s.lds.measurement = *measurement;
  if (absl::Status st = ValidateLdsOptions(s.lds, s.train_size); !st.ok())
    return flags.UsageError(std::string(st.message()));
  if (flags.GetDouble("damping") >= 0) run->damping = flags.GetDouble("damping");
  s.ensemble = flags.GetInt("ensemble");
  s.unit_norm = flags.GetBool("unit-norm");
  if (absl::Status st = ValidateEnsembleSize(s.ensemble); !st.ok()) {
    return flags.UsageError(absl::StrCat("--ensemble: ", st.message()));
  }
  const std::string cache = flags.GetString("retrain-cache");
  run->retrain_cache_dir = cache == "none" ? "" : cache.empty() ? DefaultRetrainCacheDir() : cache;
  return RunAndPrint(flags, *std::move(run), "LDS");
}

}  // namespace

int RunEval(const Args& args) {
  constexpr char kUsage[] =
      "Usage: tda eval <loo|lds> [options]\n"
      "\n"
      "How faithful each attribution method is, measured by retraining on Fashion-MNIST\n"
      "(or a tensors corpus: --data FEATURES.npy --labels LABELS.npy):\n"
      "  loo   leave-one-out retraining on logistic regression: Pearson of predicted vs actual\n"
      "  lds   linear datamodeling score over random training subsets (TRAK / dattri)\n"
      "Both take --protocol tda | dattri (settings presets) and --model lr | mlp.\n"
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
