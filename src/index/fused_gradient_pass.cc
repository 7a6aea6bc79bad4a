#include "index/fused_gradient_pass.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "index/gradient_rows.h"

namespace tda {

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
  // Positions of the capture order equal data rows window by window, so `begin` is both.
  auto capture = [&](const Batch& batch, int64_t begin,
                     const int64_t* rows) -> absl::StatusOr<BatchCapture> {
    if (begin >= factors->examples) {  // past the fit's rows: the rows alone
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
