#include "index/fused_gradient_pass.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "index/gradient_rows.h"

namespace tda {
namespace {

// Whether each capture window of `data` is one the fit reads (each whole, as
// CanFuseGradientPass requires).
std::vector<bool> FittedWindows(const RowSource& data, const FitOptions& fit) {
  const int64_t window = CaptureWindowRows(data, fit.batch_size);
  std::vector<bool> fitted(static_cast<size_t>((data.size() + window - 1) / window), false);
  for (const int64_t start : FitWindowStarts(data, fit)) fitted[start / window] = true;
  return fitted;
}

}  // namespace

bool CanFuseGradientPass(const RowSource& data, const FitOptions& fit, int64_t batch_size) {
  const int64_t fitted = std::min(fit.max_examples, data.size());
  return fit.batch_size == batch_size && batch_size > 0 &&
         (fitted == data.size() || fitted % CaptureWindowRows(data, batch_size) == 0);
}

absl::Status WriteGradientRowsAndCorrection(const Model& model, const Projection& projection,
                                            const RowSource& data, const FitOptions& fit,
                                            int64_t batch_size, KroneckerFactors* factors,
                                            IndexWriter* writer, const ProgressFn& progress,
                                            int64_t first_row, int64_t end_row,
                                            Collective* collective) {
  if (!CanFuseGradientPass(data, fit, batch_size)) {
    return absl::FailedPreconditionError(
        absl::StrCat("the fit (batch size ", fit.batch_size, ", ", fit.max_examples,
                     " examples) does not share the gradient pass's batches (batch size ",
                     batch_size, "): run FitKroneckerFactors and WriteGradientRows instead"));
  }
  // `begin` is the position in the whole data's CaptureOrder, as CaptureForFit takes it.
  const std::vector<bool> fitted = FittedWindows(data, fit);
  const int64_t window = CaptureWindowRows(data, batch_size);
  auto capture = [&](const Batch& batch, int64_t begin,
                     const int64_t* rows) -> absl::StatusOr<BatchCapture> {
    if (!fitted[begin / window]) {  // a window the fit does not read: the rows alone
      ASSIGN_OR_RETURN(BatchCapture own, model.Capture(batch));
      return projection.ProjectCaptureSides(own);
    }
    if (fit.fisher == FisherKind::kEmpirical) {
      ASSIGN_OR_RETURN(BatchCapture own, CaptureForFit(model, batch, fit, begin, &projection));
      AddEigenCorrection(own, data, rows, factors);
      return own;
    }
    BatchCapture own;
    ASSIGN_OR_RETURN(BatchCapture sampled,
                     CaptureForFit(model, batch, fit, begin, &projection, &own));
    AddEigenCorrection(sampled, data, rows, factors);
    for (size_t l = 0; l < own.layers.size(); ++l) {
      own.layers[l].a = std::move(sampled.layers[l].a);
    }
    return own;
  };
  RETURN_IF_ERROR(WriteGradientRows(model, projection, data, batch_size, writer, progress,
                                    first_row, end_row, capture));
  return FinishEigenCorrection(factors, collective);
}

}  // namespace tda
