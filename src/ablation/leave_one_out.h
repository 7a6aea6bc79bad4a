// Leave-one-out ground truth in the style of Koh & Liang (2017): for one query, retrain without
// each of a set of training samples and compare the actual change of the query loss with the
// change each influence method predicts.
//
// Training objective (convex for multinomial logistic regression = an `mlp` with no hidden
// layer, when weight_decay > 0):
//   F(theta) = 1/N sum_j w_j l_j(theta) + weight_decay / 2 |theta|^2,   w_j in {0, 1},
// with N the size of the full training set for every removal (so removing sample i is
// exactly the upweighting eps = -1/N of influence functions; the regulariser is unchanged).
// Removing i moves the optimum by ~ (1/N) (H + weight_decay I)^-1 grad l_i and changes the
// query loss by ~ (1/N) grad l_q^T (H + weight_decay I)^-1 grad l_i, H the Hessian of the mean
// loss: PredictRemovalEffects computes that with any preconditioner (which must invert
// H + weight_decay I for the prediction to be exact in the limit).
//
// Retraining is Newton-CG (conjugate gradients on exact Hessian-vector products) from a warm
// start, with a backtracking line search, to a gradient norm at float32 precision. Every
// function here is deterministic for a given seed; none is thread-safe on the same model.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/progress.h"
#include "curvature/preconditioner.h"
#include "data/dataset.h"
#include "model/model.h"

namespace tda {

struct NewtonOptions {
  double weight_decay = 0.01;        // must be > 0
  int64_t max_steps = 20;            // Newton steps
  int64_t max_cg_iterations = 500;   // per step
  double cg_tolerance = 1e-10;       // relative residual of each Newton system
  double gradient_tolerance = 1e-7;  // stop when |grad F| is below this (float32 floor ~1e-7)
};

struct NewtonReport {
  int64_t steps = 0;
  int64_t cg_iterations = 0;
  double objective = 0;
  double gradient_norm = 0;
};

// Minimises F over `data` with sample `excluded` removed (-1: none) in place, starting from
// the model's current parameters. kInvalidArgument for weight_decay <= 0 or an out-of-range
// `excluded`.
[[nodiscard]] absl::StatusOr<NewtonReport> MinimizeRegularizedLoss(Model& model, const Dataset& data,
                                                     int64_t excluded,
                                                     const NewtonOptions& options);

// Predicted change of the query's loss when each training sample is removed (length N):
//   (1/N) grad l_q^T P(grad l_i)   with P the preconditioner (P symmetric).
[[nodiscard]] absl::StatusOr<Eigen::VectorXd> PredictRemovalEffects(const Model& model, const Dataset& train,
                                                      const float* query, int32_t query_label,
                                                      const Preconditioner& preconditioner);

struct LooOptions {
  NewtonOptions newton;
  int64_t top_k = 10;   // samples with the largest |prediction| of the first method
  int64_t random = 10;  // plus this many other samples drawn uniformly
  uint64_t seed = 0;
};

struct LooMethod {
  std::string name;
  Eigen::VectorXd predicted;  // over all N training samples (PredictRemovalEffects)
};

struct LooResult {
  std::vector<int64_t> removed;            // training rows retrained without
  Eigen::VectorXd actual;                  // actual change of the query loss, per removed row
  std::vector<std::string> methods;        // method names, as given
  std::vector<Eigen::VectorXd> predicted;  // per method, restricted to `removed`
  std::vector<double> pearson;             // per method: Pearson(predicted, actual)
  double query_loss = 0;                   // at the optimum with all samples
};

// `model` must already be at the optimum of F on `train` (MinimizeRegularizedLoss with
// excluded = -1); it is left unchanged. Retrains once per selected sample.
[[nodiscard]] absl::StatusOr<LooResult> LeaveOneOut(const Model& model, const Dataset& train, const float* query,
                                      int32_t query_label, const std::vector<LooMethod>& methods,
                                      const LooOptions& options, const ProgressFn& progress = {});

}  // namespace tda
