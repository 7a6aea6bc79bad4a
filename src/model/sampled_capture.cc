#include "model/sampled_capture.h"

#include "absl/strings/str_cat.h"
#include "model/torch_model.h"

namespace tda {

absl::StatusOr<BatchCapture> CaptureSampled(const Model& model, const Batch& batch,
                                            const LabelSampler& sample, BatchCapture* own) {
  const auto* torch_model = dynamic_cast<const TorchModel*>(&model);
  if (torch_model == nullptr) {
    return absl::UnimplementedError(
        absl::StrCat("the ", model.config().kind, " model has no sampled-label capture"));
  }
  return torch_model->CaptureSampled(batch, sample, own);
}

}  // namespace tda
