// A capture with labels drawn from the model's own predictions, from one forward pass: what the
// true Fisher needs (factor fitting), with optionally the batch's own labels' output gradients
// from the same forward (the fused index-build pass, index/fused_gradient_pass.h).
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "data/batch.h"
#include "model/layer_capture.h"
#include "model/model.h"

namespace tda {

// Labels for a batch drawn from the model's output probabilities ((rows * positions) x classes,
// laid out as Model::Predict returns them): rows * positions of them, -1 where a position has no
// target. `positions` is the capture's (the batch cut after its last target).
using LabelSampler = std::function<absl::StatusOr<std::vector<int32_t>>(
    const Eigen::MatrixXf& probabilities, int64_t positions)>;

// One forward pass, then one backward pass per label set from it (the graph is kept between
// them). Returns the capture (a, g, losses) of the labels `sample` draws from the forward's
// probabilities: what Capture(batch.WithOutputs(labels)) after Predict gives, less a forward.
// With `own`, a second backward fills own->layers[l].g and own->losses for the batch's own
// labels/targets (own->layers[l].a is left empty: the inputs are the returned capture's). The
// batch's own outputs must be valid (kInvalidArgument as for Capture); kInternal when `sample`
// returns the wrong count or a label out of range, or fails (its status).
[[nodiscard]] absl::StatusOr<BatchCapture> CaptureSampled(const Model& model, const Batch& batch,
                                                          const LabelSampler& sample,
                                                          BatchCapture* own = nullptr);

}  // namespace tda
