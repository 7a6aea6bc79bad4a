// Estimates KroneckerFactors for a model on a training set: one streaming pass for the
// covariances A and S, eigendecomposition, and a second pass for the EK-FAC eigenvalue
// correction. Memory does not grow with the data set size.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "common/progress.h"
#include "curvature/ekfac.h"
#include "data/dataset.h"
#include "data/row_source.h"
#include "distributed/collective.h"
#include "grad/projection.h"
#include "model/model.h"

namespace tda {

enum class FisherKind {
  kTrue,       // labels sampled from the model's predictive distribution (default)
  kEmpirical,  // the data set's own labels
};

struct FitOptions {
  FisherKind fisher = FisherKind::kTrue;
  int64_t max_examples = 100000;  // first N samples of the data set are used
  int64_t batch_size = 512;
  uint64_t seed = 0;              // label sampling
};

// With a `projection` (LoGra), the factors are those of the projected "virtual" layers
// (ProjectCaptureSides): factors.layout is projection->projected_layout(), so they precondition
// projected gradients. Without one, the model's own layout.
// The first options.max_examples rows of `data` are read batch by batch (twice): memory does
// not grow with the number of rows beyond 8 bytes a row (their order by length).
// With a `collective` of several ranks (a data-parallel build), each rank captures a contiguous
// slice of the batches (the same batches, labels and seeds as one process) and the sums are
// all-reduced in float64 after each pass: every rank returns the same factors, equal to the
// single-process ones up to the order of the additions.
[[nodiscard]] absl::StatusOr<KroneckerFactors> FitKroneckerFactors(
    const Model& model, const RowSource& data, const FitOptions& options,
    const ProgressFn& progress = {}, const Projection* projection = nullptr,
    Collective* collective = nullptr);
[[nodiscard]] absl::StatusOr<KroneckerFactors> FitKroneckerFactors(
    const Model& model, const Dataset& data, const FitOptions& options,
    const ProgressFn& progress = {}, const Projection* projection = nullptr);

// Labels drawn from each row of `probabilities` (rows x classes) with a seeded generator.
std::vector<int32_t> SampleLabels(const Eigen::MatrixXf& probabilities, uint64_t seed);

}  // namespace tda
