// The Adam / AdamW second moment of a trained model, saved beside its weights so that
// attribution can correct gradients with the real optimizer state (TrackStar;
// grad/adam_correction.h).
//
// File: <model dir>/optimizer_state.safetensors, written atomically by SaveOptimizerState.
// One F32 tensor per tracked layer, "<layer name>.exp_avg_sq", of shape out x cols(): the
// second moment of the layer's [W | b] block (the bias column last), so the tensors
// concatenated row-major are the vector in ParamLayout order. Metadata: "optimizer" (adam |
// adamw), "step" (optimizer steps taken, the t of the bias correction), "beta2", "eps" (as
// %.17g), "exp_avg_sq_xxh3", the XXH3 of the concatenated tensor bytes, and
// "model_fingerprint", the weights' Model::Fingerprint; both are checked on load, so a state
// never outlives the weights it belongs to.
// A model trained with SGD, or saved before this file existed, has none: it loads as before,
// and only LoadOptimizerState refuses (kFailedPrecondition, naming the directory).
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "model/model.h"

namespace tda {

inline constexpr char kOptimizerStateFile[] = "optimizer_state.safetensors";

struct OptimizerState {
  std::string optimizer;       // "adam" or "adamw"
  int64_t step = 0;            // steps taken (> 0)
  double beta2 = 0;            // second-moment decay
  double eps = 0;              // the recipe's epsilon (added to sqrt(v_hat))
  Eigen::VectorXf exp_avg_sq;  // v of the final step, ParamLayout order (layout.total())

  // The bias-corrected v_hat = v / (1 - beta2^step), in double.
  Eigen::VectorXd BiasCorrected() const;
};

// Writes model_dir/optimizer_state.safetensors atomically, for the weights of `model`.
// kInvalidArgument when `state` does not cover model.layout() or holds negative or non-finite
// values.
[[nodiscard]] absl::Status SaveOptimizerState(const std::string& model_dir, const Model& model,
                                              const OptimizerState& state);
// Removes model_dir/optimizer_state.safetensors if there is one (a model retrained with SGD
// into the same directory must not keep the old run's state).
[[nodiscard]] absl::Status RemoveOptimizerState(const std::string& model_dir);

// Reads it back, bit for bit. kFailedPrecondition when the model has no optimizer state (the
// message names the directory and says how to get one); kDataLoss when the file is damaged
// (checksum, shapes, values) or does not belong to `model` (layout or weights fingerprint).
[[nodiscard]] absl::StatusOr<OptimizerState> LoadOptimizerState(const std::string& model_dir,
                                                                const Model& model);

}  // namespace tda
