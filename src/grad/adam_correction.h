// TrackStar's optimizer-state correction (Chang et al. 2024): every per-sample gradient, of the
// queries and of the training rows, is divided elementwise by sqrt(v_hat) + eps BEFORE
// projection, v_hat = v / (1 - beta2^t) the bias-corrected Adam / AdamW second moment
// (exp_avg_sq) of the model's final training step t and eps the recipe's (model/optimizer_state.h).
// Write M = 1 / (sqrt(v_hat) + eps), one entry per tracked parameter, a matrix M_l of the shape of
// [W | b] per layer (the bias is its last column and follows the same rule).
//
// tda never forms a layer's gradient G = sum_t g_t a_t^T when it projects (grad/projection.h:
// it projects the capture sides a and g), and M_l (.) G does not factor through those sides.
// Hence two kinds:
//   kExact (an unprojected index, projection_dim_per_side 0): the rows are the full gradients, so
//     each one is multiplied by M elementwise, exactly as defined.
//   kRank1 (a projected index): Adafactor's factorisation (Shazeer and Stern 2018) of each
//     layer's v_hat_l ~ R C^T, R = its row sums, C = its column sums / its total (the rank-1
//     fit minimising the I-divergence), gives M_l ~ r c^T with r = 1 / (sqrt(R) + sqrt(eps)),
//     c = 1 / (sqrt(C) + sqrt(eps)): 1 / sqrt(R C^T) is rank 1, and each factor carries
//     sqrt(eps) so that, like Adam's eps, it bounds the entries where v is ~0. (Fitting
//     M_l itself does not work: the entries of parameters that never get a gradient, v = 0,
//     are 1 / eps and swamp every sum; measured 151x relative error of the corrected gradients.)
//     diag(r) G diag(c) = sum_t (r (.) g_t)(c (.) a_t)^T, so the output-gradient side is
//     scaled by r and the input side (with its bias column 1) by c before projection, and the
//     Kronecker structure survives. Its error against kExact is measured on a real model's
//     gradients in tests/trackstar_test.cc (README "TrackStar options").
// Applied inside Projection (ScaleSides before ProjectCaptureSides, ScaleGradients after the
// per-sample gradients of an unprojected index), so the rows, the queries and the factors
// fitted from projected sides (kRank1) all see the same correction. Immutable; thread-safe.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "model/layer_capture.h"
#include "model/model.h"
#include "model/optimizer_state.h"
#include "model/param_layout.h"

namespace tda {

enum class AdamCorrectionKind { kNone, kExact, kRank1 };

// "" (kNone), "exact", "rank1": the manifest's and DescribeIndex's names.
const char* AdamCorrectionKindName(AdamCorrectionKind kind);
// kDataLoss naming `source` for another name.
[[nodiscard]] absl::StatusOr<AdamCorrectionKind> ParseAdamCorrectionKind(const std::string& name,
                                                                         const std::string& source);
// The kind an index of this projection uses: kExact for projection_dim_per_side 0, else kRank1.
AdamCorrectionKind AdamCorrectionKindFor(int64_t projection_dim_per_side);

class AdamCorrection {
 public:
  // REQUIRES kind != kNone and state.exp_avg_sq.size() == layout.total().
  AdamCorrection(OptimizerState state, const ParamLayout& layout, AdamCorrectionKind kind);

  AdamCorrectionKind kind() const { return kind_; }
  const OptimizerState& state() const { return state_; }
  const ParamLayout& layout() const { return layout_; }

  // M = 1 / (sqrt(v_hat) + eps) per parameter, ParamLayout order (the exact multiplier).
  const Eigen::VectorXd& exact_multiplier() const { return exact_; }
  // The multiplier this correction applies: M (kExact) or each layer's r c^T (kRank1).
  Eigen::VectorXd Multiplier() const;

  // kRank1: `capture` with every layer's g columns times r and a columns times c (in place).
  // kExact: unchanged.
  void ScaleSides(BatchCapture* capture) const;
  // kExact: `rows` (count x layout().total(), row-major full per-sample gradients) times M
  // elementwise, in place. kRank1: unchanged.
  void ScaleGradients(RowMatrixXf* rows) const;

 private:
  OptimizerState state_;
  ParamLayout layout_;
  AdamCorrectionKind kind_;
  Eigen::VectorXd exact_;
  std::vector<Eigen::VectorXf> row_factors_, col_factors_;  // kRank1: r, c per layer
};

// The correction of the model saved in `model_dir` (its optimizer_state.safetensors, checked
// against `model`), fitted as `kind`; nullptr for kNone. kFailedPrecondition when the model has
// no optimizer state (LoadOptimizerState's message says what to do).
[[nodiscard]] absl::StatusOr<std::shared_ptr<const AdamCorrection>> LoadAdamCorrection(
    const std::string& model_dir, const Model& model, AdamCorrectionKind kind);

}  // namespace tda
