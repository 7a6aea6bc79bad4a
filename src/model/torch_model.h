// Internal to src/model: the LibTorch side of Model, shared by the architectures and the
// trainer. Includes <torch/torch.h>; never include this from a public header.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "model/model.h"

namespace tda {

class TorchModel : public Model {
 public:
  // Logits (rows x num_classes) for inputs (rows x input_dim), differentiable.
  virtual torch::Tensor Logits(const torch::Tensor& inputs) const = 0;
  // The leaf parameter tensors an optimizer updates (requires_grad).
  virtual std::vector<torch::Tensor> TrainableParameters() = 0;
};

// A float32 tensor viewing `rows` x `cols` floats (no copy; caller keeps the memory alive).
inline torch::Tensor ViewRows(const float* data, int64_t rows, int64_t cols) {
  return torch::from_blob(const_cast<float*>(data), {rows, cols}, torch::kFloat32);
}

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
