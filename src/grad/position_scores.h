// Per-position decomposition of a score: for a sample whose gradient is G = sum_t g_t a_t^T (one
// term per position of a sequence), the score d^T vec(G) against a direction d (a preconditioned
// query gradient) splits exactly into sum_t d^T vec(g_t a_t^T). For a language model the terms
// are per-token influences within one training document (Grosse et al. 2023, sec. 3.3), and they
// sum to the document's score by construction.
#pragma once

#include <Eigen/Core>

#include "model/layer_capture.h"
#include "model/param_layout.h"

namespace tda {

// capture.samples x capture.positions: entry (i, t) = d^T vec(g_{i,t} a_{i,t}^T) summed over the
// tracked layers of `layout` (the capture must be in that layout: use Projection's
// ProjectCaptureSides and projected_layout() for a projected index). REQUIRES
// direction.size() == layout.total() and one LayerCapture per layer.
Eigen::MatrixXd PerPositionScores(const BatchCapture& capture, const ParamLayout& layout,
                                  const Eigen::VectorXd& direction);

}  // namespace tda
