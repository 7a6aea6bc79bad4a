// The linear datamodeling score (LDS; Park et al. 2023, TRAK; the dattri
// benchmark protocol): how well an attribution method's scores, summed over a
// subset of the training data, predict the query measurement of a model
// retrained from scratch on that subset.
//
// Protocol. Draw M subsets S_1..S_M of the N training samples, each of size
// round(alpha N), uniformly without replacement (seeded). Retrain a fresh model
// on each with the saved ModelConfig + TrainRecipe (same epochs, batch size,
// optimiser; `seeds_per_subset` runs with initialisation/shuffling seeds
// recipe.seed + k, k = 0.., averaged; the same k for every subset, so subsets
// differ only by their data). The measurement is each query's loss (or negated
// margin, options.measurement; ablation/measurement.h) under the retrained model.
//
// Prediction and sign. Scores come from the model trained on all N samples and
// follow tda's convention: score(i, q) > 0 means removing i RAISES q's loss. So
// the predicted loss for S is increasing in the total score of the samples
// REMOVED from the full set:
//   predicted(S, q) = sum_{i not in S} score(i, q)  ( = const - sum_{i in S}
//   score(i, q) ).
// LDS(q) = Spearman over the M subsets of (measured loss, predicted(S, q)); the
// method's LDS is the mean over queries. A faithful method has a positive LDS
// (1 at best); random scores have an LDS near 0.
//
// Deterministic for given options and thread count; not thread-safe on shared
// models.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <vector>

#include "ablation/measurement.h"
#include "absl/status/statusor.h"
#include "common/progress.h"
#include "data/dataset.h"
#include "model/model_config.h"

namespace tda {

struct LdsOptions {
  int64_t subsets = 100;         // M >= 2
  double alpha = 0.5;            // fraction kept, in (0, 1)
  int64_t seeds_per_subset = 1;  // retrainings averaged per subset, >= 1
  uint64_t seed = 0;             // subset sampling
  Measurement measurement = Measurement::kLoss;  // what is measured on each query
};

// kInvalidArgument naming the first bad field (also when round(alpha n) is 0 or
// n).
[[nodiscard]] absl::Status ValidateLdsOptions(const LdsOptions& options, int64_t n);

// M sorted subsets of {0..n-1}, each of round(alpha n) indices.
[[nodiscard]] absl::StatusOr<std::vector<std::vector<int64_t>>> SampleSubsets(int64_t n,
                                                                const LdsOptions& options);

struct LdsRetraining {
  int64_t train_size = 0;                     // N
  std::vector<std::vector<int64_t>> subsets;  // M kept-index lists
  Eigen::MatrixXd measured;                   // M x Q: query measurements, mean over seeds
  double seconds = 0;                         // wall time of all retrainings
};

// Retrains on every subset and measures the query losses. `recipe.train_size`
// is ignored (each subset is trained on in full). Progress: stage "retrain",
// one unit per training run.
[[nodiscard]] absl::StatusOr<LdsRetraining> RetrainOnSubsets(const ModelConfig& config, const TrainRecipe& recipe,
                                               const Dataset& train, const Dataset& queries,
                                               const LdsOptions& options,
                                               const ProgressFn& progress = {});

struct LdsScore {
  double mean = 0;            // LDS of the method: mean over queries
  Eigen::VectorXd per_query;  // Q Spearman correlations
};

// LDS of one method's scores (N x Q, tda's sign convention) against a
// retraining. kInvalidArgument when the shapes do not match.
[[nodiscard]] absl::StatusOr<LdsScore> LinearDatamodelingScore(const LdsRetraining& retraining,
                                                 const Eigen::MatrixXd& scores);

}  // namespace tda
