// Internal to src/model: the LibTorch side of Model, shared by the architectures and the
// trainer. Includes <torch/torch.h>; never include this from a public header.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "common/safetensors.h"
#include "model/model.h"
#include "model/sampled_capture.h"

namespace tda {

class TorchModel : public Model {
 public:
  // Logits, differentiable: rows x num_classes for float inputs (rows x input_dim) of a
  // classifier; rows x length x vocabulary for int64 tokens (rows x length) of a sequence model.
  virtual torch::Tensor Logits(const torch::Tensor& inputs) const = 0;
  // Logits of a training step: Logits plus whatever only training applies (the mlp's dropout,
  // its masks drawn from a generator seeded with `step_seed`, so training stays deterministic).
  virtual torch::Tensor TrainingLogits(const torch::Tensor& inputs, uint64_t step_seed) const {
    (void)step_seed;
    return Logits(inputs);
  }
  // CaptureSampled (sampled_capture.h) of this architecture.
  [[nodiscard]] virtual absl::StatusOr<BatchCapture> CaptureSampled(const Batch& batch,
                                                      const LabelSampler& sample,
                                                      BatchCapture* own) const = 0;
  // The leaf parameter tensors an optimizer updates (requires_grad).
  virtual std::vector<torch::Tensor> TrainableParameters() = 0;
  // The tensors of the tracked layers in ParamLayout order (per layer its weight, then its
  // bias when it has one), the same objects TrainableParameters holds: the order JoinFlat takes.
  virtual std::vector<torch::Tensor> TrackedParameters() = 0;
};

// A float32 tensor viewing `rows` x `cols` floats (no copy; caller keeps the memory alive).
inline torch::Tensor ViewRows(const float* data, int64_t rows, int64_t cols) {
  return torch::from_blob(const_cast<float*>(data), {rows, cols}, torch::kFloat32);
}

// The architectures (mlp.cc, gpt.cc): freshly initialised with `seed`, or with saved weights.
std::unique_ptr<TorchModel> CreateMlp(const ModelConfig& config, uint64_t seed);
[[nodiscard]] absl::StatusOr<std::unique_ptr<TorchModel>> LoadMlp(const ModelConfig& config,
                                                    const SafetensorsFile& weights);
std::unique_ptr<TorchModel> CreateGpt(const ModelConfig& config, uint64_t seed);
[[nodiscard]] absl::StatusOr<std::unique_ptr<TorchModel>> LoadGpt(const ModelConfig& config,
                                                    const SafetensorsFile& weights);

// The flat float64 vector `flat` (ParamLayout order) as per-parameter tensors: for each tracked
// layer its weight (out x in) and, when it has one, its bias (out). Copies.
std::vector<torch::Tensor> SplitFlat(const ParamLayout& layout, const double* flat);
// The inverse: writes per-parameter tensors (undefined = zero) into `flat`.
void JoinFlat(const ParamLayout& layout, const std::vector<torch::Tensor>& parts, double* flat);

// The columns of `vectors` (ParamLayout order) times the curvature of a mean cross-entropy, for
// CurvatureProduct. kHessian: the Hessian of `mean_loss` over `params` (built from `logits` with
// differentiable ops). kGaussNewton: J^T H J, J the Jacobian of `logits` over `params` and H the
// cross-entropy's output Hessian diag(p) - p p^T of softmax over the last dimension, scaled by
// `output_weight` (broadcast against `logits`: 1/rows, 0 where a position has no target).
// `params` are float64 leaves that require grad, in the layout's order.
Eigen::MatrixXd CurvatureVectorProducts(const ParamLayout& layout,
                                        const std::vector<torch::Tensor>& params,
                                        const torch::Tensor& logits, const torch::Tensor& mean_loss,
                                        const torch::Tensor& output_weight, Curvature kind,
                                        const Eigen::MatrixXd& vectors);

// kInvalidArgument unless `vectors` has `dim` rows and finite entries (CurvatureProduct input).
[[nodiscard]] absl::Status CheckCurvatureVectors(const Eigen::MatrixXd& vectors, int64_t dim);

}  // namespace tda

namespace tda {

// Runs `fn` (returning a Status or StatusOr) and turns a LibTorch exception into kInternal, so
// no c10::Error crosses the edge of src/.
template <typename Fn>
auto CatchTorchErrors(std::string_view what, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const std::exception& e) {
    return absl::InternalError(std::string(what) + ": " + e.what());
  }
}

}  // namespace tda
