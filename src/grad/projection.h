// Seeded Kronecker-structured random projection of gradients (LoGra-style): for a tracked
// layer with gradient G (out x cols), the projected gradient is P_g G P_a^T with Gaussian
// P_g (k_out x out) and P_a (k_in x cols), entries N(0, 1/k), so E[<Px, Py>] = <x, y>.
// A side whose size is <= k is left unprojected (identity), so small layers stay exact;
// dim_per_side == 0 means no projection at all (exact gradients).
// For one position, P_g (g a^T) P_a^T = (P_g g)(P_a a)^T, so projecting training gradients costs
// two small matrix-vector products per sample instead of forming G.
//
// Curvature is fitted in the projected space (LoGra, Choe et al. 2024): the projected layer is a
// "virtual" tracked layer with inputs P_a a and output gradients P_g g, so K-FAC/EK-FAC factors,
// per-sample gradients and queries all live in the same subspace (see ProjectCaptureSides).
//
// With an AdamCorrection (grad/adam_correction.h) every gradient is corrected before it is
// projected: the capture sides are scaled first (kRank1), or the full per-sample gradients of
// an unprojected index are multiplied elementwise (kExact), in every method below.
//
// Immutable after construction; safe to share across threads.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "grad/adam_correction.h"
#include "model/layer_capture.h"
#include "model/param_layout.h"

namespace tda {

class Projection {
 public:
  // REQUIRES: a kExact correction only with dim_per_side == 0, over `layout`.
  Projection(const ParamLayout& layout, int64_t dim_per_side, uint64_t seed,
             std::shared_ptr<const AdamCorrection> correction = nullptr);

  int64_t dim_per_side() const { return dim_per_side_; }
  uint64_t seed() const { return seed_; }
  // The Adam correction applied before projecting, or null.
  const AdamCorrection* correction() const { return correction_.get(); }
  int64_t input_dim() const { return layout_.total(); }
  int64_t output_dim() const { return output_dim_; }
  // Projected size of each tracked layer (k_out * k_in), in layout order.
  std::vector<int64_t> layer_output_dims() const;

  // The layout of the projected space: per layer k_out x k_in, no separate bias column.
  const ParamLayout& projected_layout() const { return projected_layout_; }

  // The capture of the virtual projected layers: a' = a P_a^T, g' = g P_g^T per row. Of a
  // kExact-corrected projection these are the uncorrected sides (the elementwise correction
  // exists only for whole gradients): use ProjectCapture, or CorrectProjected on a direction.
  BatchCapture ProjectCaptureSides(const BatchCapture& capture) const;

  // Projected (and corrected) per-sample gradients straight from a capture: samples x
  // output_dim(); the same as columns, in float64: output_dim() x samples.
  RowMatrixXf ProjectCapture(const BatchCapture& capture) const;
  Eigen::MatrixXd ProjectCaptureColumns(const BatchCapture& capture) const;
  // The same rows from sides ProjectCaptureSides already made (the exact correction applied).
  RowMatrixXf RowsFromProjectedSides(const BatchCapture& sides) const;
  // The kExact multiplier applied to a projected-space vector (identity otherwise): the
  // score <M (.) G, d> of a position's uncorrected gradient G is <G, M (.) d>.
  Eigen::VectorXd CorrectProjected(const Eigen::VectorXd& direction) const;

  // Projects full gradients given as columns: input_dim() x Q -> output_dim() x Q.
  Eigen::MatrixXd ProjectColumns(const Eigen::MatrixXd& grads) const;

 private:
  struct LayerProjection {
    Eigen::MatrixXd p_out;  // k_out x out (empty = identity)
    Eigen::MatrixXd p_in;   // k_in x cols (empty = identity)
    Eigen::MatrixXf p_out_f, p_in_f;  // float copies for projecting captures
    int64_t k_out, k_in, offset;
  };
  ParamLayout layout_;
  ParamLayout projected_layout_;
  int64_t dim_per_side_;
  uint64_t seed_;
  int64_t output_dim_ = 0;
  std::vector<LayerProjection> layers_;
  std::shared_ptr<const AdamCorrection> correction_;
};

}  // namespace tda
