// The fused pass of an index build: one forward per batch serves both the EK-FAC eigenvalue
// correction and the index rows. From that forward, one backward of the loss of labels sampled
// from the model (true Fisher: the labels FitKroneckerFactors's second pass draws, same seeds
// and batches) gives the output gradients of the correction, and a second backward of the data's
// own labels gives the per-sample gradient rows; the layer inputs a (and their projection) are
// shared. With the empirical Fisher one backward serves both. A build is then the covariance
// pass (FitCovariances) and this pass: two passes over the corpus instead of three, with the
// same factors and rows as FitKroneckerFactors followed by WriteGradientRows.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "common/progress.h"
#include "curvature/ekfac.h"
#include "curvature/factor_fitting.h"
#include "data/row_source.h"
#include "distributed/collective.h"
#include "grad/projection.h"
#include "index/index_writer.h"
#include "model/model.h"

namespace tda {

// Whether the fit's batches are the gradient pass's, so that the two can be fused: the same
// batch size, and the fit's rows (FitWindowStarts) whole capture windows or all rows.
bool CanFuseGradientPass(const RowSource& data, const FitOptions& fit, int64_t batch_size);

// WriteGradientRows of rows [first_row, end_row) (end_row -1: to the end) that also adds the
// eigenvalue correction of those of them the fit reads (FitWindowStarts) to `factors`
// (from FitCovariances with `fit` and `projection`), then finishes it (FinishEigenCorrection,
// across the ranks of `collective`: every rank calls this). REQUIRES
// CanFuseGradientPass(data, fit, batch_size); kFailedPrecondition otherwise.
[[nodiscard]] absl::Status WriteGradientRowsAndCorrection(
    const Model& model, const Projection& projection, const RowSource& data, const FitOptions& fit,
    int64_t batch_size, KroneckerFactors* factors, IndexWriter* writer, const ProgressFn& progress,
    int64_t first_row = 0, int64_t end_row = -1, Collective* collective = nullptr);

}  // namespace tda
