// Per-sample gradients from a BatchCapture without a loop of batch-size-1 backward passes:
// for sample i, G_i = sum_t g_{i,t} a_{i,t}^T per tracked layer (one position for an MLP),
// flattened in ParamLayout order.
#pragma once

#include "model/layer_capture.h"
#include "model/param_layout.h"

namespace tda {

// samples x layout.total(), float32 (the storage precision of an exact index).
RowMatrixXf PerSampleGradients(const BatchCapture& capture, const ParamLayout& layout);

// Same in float64, as columns: layout.total() x samples (the shape preconditioners take).
Eigen::MatrixXd PerSampleGradientColumns(const BatchCapture& capture, const ParamLayout& layout);

}  // namespace tda
