// Data-removal ablation ("what if these samples, or this whole data source, had not been in the
// training set?"): for each query of one or more tasks, three estimates of how its loss changes
// when a set R of training samples is removed:
//
//   predicted  = (1/N) sum_{i in R} score(i, q)                      influence, from the index
//   newton     = loss(q; theta + (1/N) P sum_{i in R} grad L_i) - loss(q; theta)
//                                           approximate unlearning: one damped Newton step with
//                                           the preconditioner P ~ (H + lambda I)^-1 of the full
//                                           parameters (EK-FAC fitted here, unprojected)
//   retrained  = loss(q; model retrained without R from the saved recipe and seed)
//                - loss(q; the baseline)  (the given model, or a retrain on all samples)
//
// N is the number of training samples; score(i, q) follows tda's sign (positive = removing i
// raises q's loss), so `predicted` is the first-order estimate of both other columns. Removing
// sample i from the mean loss moves the optimum by (1/N) H^-1 grad L_i; that is why the Newton
// step and the prediction share the factor 1/N (for sequence models trained on the mean token
// loss the token count cancels the same way).
//
// Deterministic for given inputs and thread count; not thread-safe on a shared model.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "absl/status/statusor.h"
#include "common/progress.h"
#include "curvature/ekfac.h"
#include "curvature/factor_fitting.h"
#include "data/dataset.h"
#include "model/model.h"
#include "model/model_config.h"

namespace tda {

// Scores of every training row (index order = the rows of the training Dataset) against each
// query row of `queries`: N x Q, tda's sign convention. Supplied by the caller (an Attributor
// over the model's index), so this module does not depend on the index or the service.
using TrainingScoreFn = std::function<absl::StatusOr<Eigen::MatrixXf>(const Batch& queries)>;

// A named query set whose loss the ablation measures, e.g. "test images of class Sandal" or
// "held-out fortunes of category startrek".
struct AblationTask {
  std::string name;
  Dataset queries;
};

struct RemovalAblationOptions {
  Damping damping;              // of the full-parameter EK-FAC used by the Newton step
  FitOptions fit;               // how those factors are fitted on the training set
  bool newton = true;           // compute the approximate-unlearning column
  bool retrain = true;          // compute the retrained column (the expensive one)
  bool retrain_baseline = false;  // also retrain on all samples and measure against that
  std::string unlearned_model_dir;  // when set, the Newton-step model is saved there
};

struct QueryEffect {
  std::string id;
  double base_loss = 0;
  double predicted = 0;
  std::optional<double> newton;
  std::optional<double> retrained;
};

struct TaskEffect {
  std::string name;
  std::vector<QueryEffect> queries;
  double mean_predicted = 0;
  std::optional<double> mean_newton, mean_retrained;
};

struct RemovalAblationResult {
  int64_t removed = 0;
  int64_t training_samples = 0;
  std::vector<TaskEffect> tasks;
  // Pearson correlations across all queries of all tasks (when both columns exist and there
  // are at least 3 queries).
  std::optional<double> pearson_predicted_retrained, pearson_newton_retrained,
      pearson_predicted_newton;
  double seconds_predicted = 0, seconds_newton = 0, seconds_retrain = 0;
};

// `model` is the trained model (unchanged on return), `train` the data set it was trained on
// (its first recipe.train_size rows if that is set), `removed` row numbers in `train`.
// kInvalidArgument for out-of-range or duplicate rows, an empty or full removal set, tasks
// whose data do not fit the model, or a score matrix of the wrong shape.
[[nodiscard]] absl::StatusOr<RemovalAblationResult> RunRemovalAblation(
    const Model& model, const TrainRecipe& recipe, const Dataset& train,
    const std::vector<int64_t>& removed, const std::vector<AblationTask>& tasks,
    const TrainingScoreFn& scores, const RemovalAblationOptions& options,
    const ProgressFn& progress = {});

// Per-query losses of `data` under `model` (the loss Capture reports: cross-entropy of the
// label, or the summed cross-entropy of a sequence's targets).
[[nodiscard]] absl::StatusOr<Eigen::VectorXd> QueryLosses(const Model& model, const Dataset& data);

}  // namespace tda
