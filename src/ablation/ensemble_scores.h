// Influence scores of an ensemble of models (TRAK's main lever, Park et al. 2023): E models
// trained on the same data by the same recipe with seeds seed, seed + 1, ..., seed + E - 1
// (initialisation, shuffling and dropout masks all follow the seed), each scored by every
// method on its own; the ensemble's score of (i, q) is the mean of its members' scores.
//
// Members are trained and scored one at a time: memory holds one model, that member's score
// matrix of the method being computed and one running N x Q sum per method. Member 0 is the
// model a single-model run trains (same seed, same damping rule), so an ensemble of one is
// that run bit for bit.
//
// Damping: the given absolute value for every member, else each member's own DefaultDamping
// (method_scores.h), fitted on its own model.
//
// Thread-compatible: one computation per call.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "ablation/method_scores.h"
#include "absl/status/statusor.h"
#include "common/progress.h"
#include "data/dataset.h"
#include "model/model_config.h"

namespace tda {

struct EnsembleOptions {
  int64_t members = 1;              // E >= 1
  std::optional<double> damping;    // absolute, every member; default: each member's own
  MethodSettings settings;          // measurement, factor fitting, ...; damping set per member
  std::function<bool()> cancelled;  // checked between members' methods (optional)
  // Saved members (ablation/trained_model_cache.h): the directory ("" = none) and where the
  // training data came from (part of the key).
  std::string cache_dir;
  std::string data_path;
};

// The largest ensemble accepted (each member is a full training run).
inline constexpr int64_t kMaxEnsembleMembers = 100;

// kInvalidArgument unless 1 <= members <= kMaxEnsembleMembers, saying so.
[[nodiscard]] absl::Status ValidateEnsembleSize(int64_t members);

struct EnsembleMethodScores {
  Method method = Method::kEkfac;
  Eigen::MatrixXd mean;    // N x Q: the mean over members of their scores
  double seconds = 0;      // summed over members (training not included)
  int64_t peak_bytes = 0;  // the largest member's
  std::string detail;      // member 0's
};

struct EnsembleScores {
  int64_t parameters = 0;                     // of one member
  std::vector<double> dampings;               // per member
  double train_seconds = 0;                   // all members' training (or loading)
  int64_t members_from_cache = 0;             // loaded from saved members instead of trained
  std::vector<EnsembleMethodScores> methods;  // in the order asked
};

// Told after member `member` (0-based) was scored by methods[method_index]: its own scores
// and the running sum of members 0..member's scores of that method (divide by member + 1 for
// the ensemble of the first member + 1 models).
using EnsembleMemberFn =
    std::function<absl::Status(int64_t member, size_t method_index, const MethodScores& own,
                               const Eigen::MatrixXd& running_sum)>;

// Trains the members of `config` + `recipe` on `train` (recipe.seed + k for member k; loaded
// instead when options.cache_dir holds them, saved there otherwise) and scores every row of `train`
// for every row of `queries` by each method. Progress: stage "train" of each member, then the
// methods' own stages. kInvalidArgument when members is outside [1, kMaxEnsembleMembers] or the
// damping is negative; kCancelled when `cancelled` says so; an error from `on_member` stops the
// computation and is returned.
[[nodiscard]] absl::StatusOr<EnsembleScores> ComputeEnsembleScores(
    const ModelConfig& config, const TrainRecipe& recipe, const std::vector<Method>& methods,
    const Dataset& train, const Dataset& queries, const EnsembleOptions& options,
    const ProgressFn& progress = {}, const EnsembleMemberFn& on_member = {});

}  // namespace tda
