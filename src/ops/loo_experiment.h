// The use case "does each method predict leave-one-out retraining": the Koh &
// Liang (2017) protocol on L2-regularised multinomial logistic regression.
// Train the model, converge it by Newton-CG, take a test query (the highest
// loss of the first 20 by default), score every training sample with each
// method (all inverting the Hessian + weight decay I of the mean loss), retrain
// without each of the first method's top-k samples and some random ones, and
// correlate predicted with actual changes of the query loss
// (ablation/leave_one_out.h). Written once here; `tda eval loo` calls it with
// the data and settings it parsed.
//
// Thread-compatible: one experiment per call.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ablation/leave_one_out.h"
#include "ablation/method_scores.h"
#include "absl/status/statusor.h"
#include "common/progress.h"
#include "data/dataset.h"
#include "model/model_config.h"

namespace tda {

struct LooExperiment {
  TrainRecipe
      recipe; // of the model (weight_decay > 0: the objective must be convex)
  std::vector<Method>
      methods;        // the first picks the top-k samples to retrain without
  int64_t query = -1; // test row; -1: the highest loss among the first 20
  int64_t top_k = 20;
  int64_t random = 20;
};

struct LooExperimentResult {
  int64_t parameters = 0;
  int64_t query = 0; // test row used
  LooResult
      loo; // per method (in the order asked): Pearson of predicted vs actual
  std::vector<MethodScores> scores; // per method, N x 1
};

// kInvalidArgument for weight_decay <= 0, no methods or a query past the test
// rows; the errors of training, Newton-CG, scoring and retraining.
[[nodiscard]] absl::StatusOr<LooExperimentResult>
RunLooExperiment(const LooExperiment &experiment, const Dataset &train,
                 const Dataset &test, const ProgressFn &progress = {});

} // namespace tda
