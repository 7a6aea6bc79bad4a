// The use case behind `tda eval lds | loo` and the `eval` job kind: one evaluation from a
// resolved setup (a protocol preset, ablation/eval_protocol.h, with any overrides applied),
// reported as rows for a table and as the JSON both `--json` and the job print. The CLI and
// the job kind load the data and call RunEval; nothing else differs between them.
//
// Thread-compatible: one evaluation per call.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "ablation/eval_protocol.h"
#include "absl/status/statusor.h"
#include "common/progress.h"
#include "curvature/preconditioner.h"
#include "data/dataset.h"

namespace tda {

struct EvalRun {
  std::string experiment = "lds";  // lds | loo
  std::string protocol = "tda";    // the preset's name, reported
  EvalSetup setup;
  std::string methods = "auto";   // comma-separated method names, or auto (ParseEvalMethods)
  std::optional<double> damping;  // LDS: absolute damping of every method; default: DefaultDamping
  std::string data_path;          // where the data came from (the retraining cache key)
  std::string retrain_cache_dir;  // LDS: saved retrainings ("" = none)
  int64_t query = -1;             // LOO: test row (-1: highest loss of the first 20)
  int64_t top_k = 20;             // LOO
  int64_t random = 20;            // LOO
  std::function<bool()> cancelled;  // LDS: checked between methods (optional)
};

struct EvalRow {
  std::string method;
  double value = 0;  // LDS or LOO Pearson
  double vs_exact = 0;
  bool has_vs_exact = false;  // when exact was one of the methods
  double seconds = 0;
  int64_t peak_bytes = 0;
  std::string detail;
  // LDS of an ensemble (setup.ensemble > 1): the mean of the members' single-model LDS, and
  // the LDS of the ensemble of the first k members, k = 1..E (empty otherwise).
  double members_mean = 0;
  std::vector<double> ensemble_curve;
};

struct EvalReport {
  std::string settings;  // one paragraph describing the run, for the table
  std::vector<EvalRow> rows;
  std::string json;  // one JSON object: the settings and the rows
};

// "auto": ekfac, kfac, gradient-dot, and exact + lissa for at most kMaxExactParameters
// parameters; else names separated by commas. kInvalidArgument naming the known methods.
[[nodiscard]] absl::StatusOr<std::vector<Method>> ParseEvalMethods(const std::string& text,
                                                                   int64_t parameters);

// Test rows the evaluation needs (LDS: the queries; LOO: enough for its query).
int64_t EvalTestRows(const EvalRun& run);

// The preset's data: the first setup.train_size training and EvalTestRows(run) test rows of
// Fashion-MNIST at setup.side from `dir`, or, for a sequence model, of the fortunes as
// documents of its context length (train: the first N; test: the first held-out ones). `dir`
// "" = the data set's default directory; run->data_path is set to the one read.
[[nodiscard]] absl::Status LoadPresetData(EvalRun* run, const std::string& dir, Dataset* train,
                                          Dataset* test);

// kInvalidArgument for bad settings (naming the field); the errors of the experiment.
[[nodiscard]] absl::StatusOr<EvalReport> RunEval(const EvalRun& run, const Dataset& train,
                                                 const Dataset& test,
                                                 const ProgressFn& progress = {});

}  // namespace tda
