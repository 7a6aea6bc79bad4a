// Internal to src/model: what the decoder-only transformers (gpt.cc, llama.cc) share. A
// DecoderModel holds its parameters as a named table; an architecture registers them in its
// constructor (AddParameter, AddTrackedLinear) and supplies Forward. The base implements the
// Model contract on top: batch checks, prediction, capture of the tracked layers' a and g,
// curvature products in float64, the flat tracked-parameter vector, fingerprint and saving.
//
// Capture contract (as documented for the gpt kind): a row's loss is the SUM of the
// cross-entropies of its targets >= 0; the batch is cut after the last position with a target
// (causal attention: the cut changes nothing before it); `a` is zero at positions after a
// row's last target, whose g is zero too. Parameters are saved under their registered names in
// PyTorch Linear layout (out x in), in the dtype they are held in.
//
// Weight matrices (Linear weights, embeddings) are held as float32, or as bfloat16 when the model
// is loaded from a checkpoint whose matrices are all BF16 (bf16_weights.h: computed in float32,
// half the memory); vectors (norms, biases) are always float32. Writing the parameters
// (TrainableParameters, SetParameters) first widens a bf16-resident model to float32 in place:
// bf16 cannot hold small updates, so training and Newton steps keep float32 master weights
// (twice the weights' memory).
#pragma once

#include <torch/torch.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "model/torch_model.h"

namespace tda {

// Inputs and outputs of the tracked Linear layers during one forward pass, in call order.
struct Recording {
  std::vector<torch::Tensor> inputs;   // detached
  std::vector<torch::Tensor> outputs;  // in the graph
};

// x W^T + b (b may be undefined; W float32, float64, or bfloat16 computed in float32 with
// UpcastLinear); records x and the output when `rec` is set.
torch::Tensor TrackedLinear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b,
                            Recording* rec);

// Causal scaled dot-product attention. q: rows x H x T x dh; k, v: rows x Hkv x T x dh with Hkv
// dividing H (grouped-query attention: query head h reads key/value head h / (H / Hkv)).
// Returns rows x T x (H dh), heads concatenated.
torch::Tensor CausalAttention(const torch::Tensor& q, const torch::Tensor& k,
                              const torch::Tensor& v);

// A parameter's value by name, in tda's layout (out x in for Linear weights), any floating dtype;
// kNotFound or kDataLoss naming it when it cannot be produced.
using TensorLookup = std::function<absl::StatusOr<torch::Tensor>(const std::string& name)>;

class DecoderModel : public TorchModel {
 public:
  struct NamedShape {
    std::string name;
    std::vector<int64_t> shape;
  };

  const ModelConfig& config() const override { return config_; }
  const ParamLayout& layout() const override { return layout_; }
  torch::Tensor Logits(const torch::Tensor& tokens) const override;
  std::vector<torch::Tensor> TrainableParameters() override;
  std::vector<torch::Tensor> TrackedParameters() override;
  [[nodiscard]] absl::StatusOr<Eigen::MatrixXf> Predict(const Batch& batch) const override;
  [[nodiscard]] absl::StatusOr<BatchCapture> Capture(const Batch& batch) const override;
  [[nodiscard]] absl::StatusOr<BatchCapture> CaptureSampled(const Batch& batch, const LabelSampler& sample,
                                              BatchCapture* own) const override;
  [[nodiscard]] absl::StatusOr<Eigen::MatrixXd> CurvatureProduct(const Batch& batch,
                                                   const Eigen::MatrixXd& vectors,
                                                   Curvature kind) const override;
  Eigen::VectorXf Parameters() const override;
  [[nodiscard]] absl::Status SetParameters(const Eigen::VectorXf& flat) override;
  std::string Fingerprint() const override;
  [[nodiscard]] absl::Status Save(const std::string& dir, const TrainRecipe& recipe) const override;

  // Every parameter's name and shape, in registration order.
  std::vector<NamedShape> ParameterShapes() const;
  // Every parameter by name and value (as held: see matrix_dtype(); shared storage), in
  // registration order.
  std::vector<std::pair<std::string, torch::Tensor>> NamedParameters() const;
  // Sets every parameter from `lookup` (widened to the dtype it is held in; kInvalidArgument for
  // a non-BF16 value of a bf16-held matrix, which would round); kDataLoss naming `source` and the
  // parameter for a wrong shape or NaN/Inf. On error the model is partly overwritten: discard it.
  [[nodiscard]] absl::Status LoadParameters(const TensorLookup& lookup, const std::string& source);
  // GPT-2's initialisation: N(0, 0.02) for weight matrices and embeddings, N(0, 0.02 /
  // sqrt(2 layers)) for the projections into the residual stream; vectors keep their fill.
  void Initialise(uint64_t seed);
  // How the weight matrices are held: torch::kFloat32 or torch::kBFloat16.
  torch::Dtype matrix_dtype() const { return matrix_dtype_; }

 protected:
  // `matrix_dtype`: how the weight matrices are held (kFloat32 or kBFloat16).
  DecoderModel(const ModelConfig& config, torch::Dtype matrix_dtype)
      : config_(config), matrix_dtype_(matrix_dtype) {}

  // Logits (rows x length x vocabulary) of int64 tokens (rows x length), computed with the
  // parameter values `p` (registration order; any one floating dtype).
  virtual torch::Tensor Forward(const std::vector<torch::Tensor>& p, const torch::Tensor& tokens,
                                Recording* rec) const = 0;

  // Registers an untracked parameter filled with `fill`; returns its index into Forward's `p`.
  int AddParameter(const std::string& name, std::vector<int64_t> shape, float fill);
  // Registers a tracked Linear `prefix`.weight (out x in) and, when has_bias, `prefix`.bias, and
  // its ParamLayout entry; `residual` selects the residual-stream initialisation.
  struct LinearIndex {
    int weight = -1;
    int bias = -1;  // -1: no bias
  };
  LinearIndex AddTrackedLinear(const std::string& prefix, int64_t out, int64_t in, bool has_bias,
                               bool residual);
  // p[index], or an undefined tensor for index -1.
  static torch::Tensor At(const std::vector<torch::Tensor>& p, int index) {
    return index < 0 ? torch::Tensor() : p[static_cast<size_t>(index)];
  }

 private:
  struct Parameter {
    std::string name;
    torch::Tensor value;
    bool residual = false;
  };

  [[nodiscard]] absl::Status CheckBatch(const Batch& batch, bool need_targets) const;
  torch::Tensor RowLosses(const torch::Tensor& logits, const torch::Tensor& targets) const;
  std::vector<torch::Tensor> Values() const;
  // The tracked entries of `values` in ParamLayout order (weight, then bias, per layer).
  std::vector<torch::Tensor> Tracked(const std::vector<torch::Tensor>& values) const;
  // Capture (sample null) or CaptureSampled on a checked batch.
  [[nodiscard]] absl::StatusOr<BatchCapture> CaptureUnchecked(const Batch& batch, const LabelSampler* sample,
                                                BatchCapture* own) const;
  Eigen::MatrixXd CurvatureProductUnchecked(const Batch& batch, const Eigen::MatrixXd& vectors,
                                            Curvature kind) const;
  SafetensorsWriter WeightsFile() const;
  // Widens bf16-held matrices to float32 (no-op for a float32 model).
  void HoldFloat32();

  ModelConfig config_;
  torch::Dtype matrix_dtype_;
  ParamLayout layout_;
  std::vector<Parameter> params_;
  std::vector<int> tracked_;  // indices into params_, ParamLayout order
};

// The architectures, parameters zero (norm scales one), matrices held as `matrix_dtype`:
// gpt.cc, llama.cc; and by config.kind ("gpt" or "llama").
std::unique_ptr<DecoderModel> NewGpt(const ModelConfig& config, torch::Dtype matrix_dtype);
std::unique_ptr<DecoderModel> NewLlama(const ModelConfig& config, torch::Dtype matrix_dtype);
std::unique_ptr<DecoderModel> NewDecoder(const ModelConfig& config,
                                         torch::Dtype matrix_dtype = torch::kFloat32);
// NewDecoder with its parameters from one safetensors file holding tda's names (F32, BF16 or
// F16 tensors; matrices held bf16 when the file's are all BF16: ResidentMatrixDType).
[[nodiscard]] absl::StatusOr<std::unique_ptr<DecoderModel>> LoadDecoder(const ModelConfig& config,
                                                          const SafetensorsFile& weights);

// A tensor viewing a safetensors view of F32, BF16 or F16 data in its stored dtype (no copy:
// valid while the view's file lives); kInvalidArgument naming `what` for other dtypes.
[[nodiscard]] absl::StatusOr<torch::Tensor> TensorFromView(const TensorView& view, const std::string& what);

}  // namespace tda
