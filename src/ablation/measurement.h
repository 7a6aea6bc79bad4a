// What the evaluations measure on a query (of a classifier), and its gradient: the query side
// of an influence score. Training-sample gradients are always those of the training loss.
//
//   loss:   f = -log p_y                        (cross-entropy of the true label; a text row:
//                                                summed over its target tokens)
//   mean:   f = loss / T                        (text rows: the mean over their T target
//                                                tokens; classifiers: T = 1, the loss)
//   margin: f = -log(p_y / (1 - p_y))           (TRAK's margin, negated)
//             = logsumexp_{k != y} z_k - z_y    (z the logits)
//
// Mean and loss differ per query by the positive factor 1 / T, and so do their gradients: a
// per-query correlation (LDS) is the same for both; what changes is how queries of different
// lengths weigh against each other when their scores are compared or summed.
//
// Both are loss-like (larger = worse), so tda's sign convention holds for either: score > 0
// means removing the sample RAISES f, and an LDS correlates retrained f with summed scores.
//
// The margin's gradient needs no new model code: the backward pass is linear in the gradient
// at the logits, df/dz = w with w_y = -1 and w_k = p_k / (1 - p_y) (k != y), which sums to 0;
// the cross-entropy gradient for label k has df/dz = p - e_k, so
//   sum_k w_k (p - e_k) = -w   and   grad f = -sum_k w_k grad CE_k,
// combined per layer on the captured output gradients g (a is the same for every label).
// Values come from the captured losses -log p_k, in float64 (precise when p_y is near 1).
#pragma once

#include <Eigen/Core>
#include <string>

#include "absl/status/statusor.h"
#include "data/dataset.h"
#include "model/model.h"

namespace tda {

enum class Measurement { kLoss, kMeanLoss, kMargin };

// "loss" | "mean" | "margin"; kInvalidArgument naming them otherwise.
[[nodiscard]] absl::StatusOr<Measurement> ParseMeasurement(const std::string& name);
const char* MeasurementName(Measurement measurement);

// f of every row of `queries` (their own labels), length Q. kInvalidArgument for a sequence
// data set with the margin.
[[nodiscard]] absl::StatusOr<Eigen::VectorXd> QueryMeasurements(const Model& model,
                                                                const Dataset& queries,
                                                                Measurement measurement);

// grad f of every row of `queries`, D x Q (full per-sample gradients; loss: GradientColumns).
[[nodiscard]] absl::StatusOr<Eigen::MatrixXd> MeasurementGradientColumns(const Model& model,
                                                                         const Dataset& queries,
                                                                         Measurement measurement);

}  // namespace tda
