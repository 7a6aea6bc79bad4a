#include "model/decoder_model.h"

#include <cmath>
#include <limits>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/atomic_file.h"
#include "common/checksum.h"
#include "common/status_macros.h"
#include "data/byte_tokenizer.h"
#include "model/bf16_weights.h"

namespace tda {
namespace {

// Standard normal draws from a seeded 64-bit generator (Box-Muller on raw bits), so the
// initialisation does not depend on the standard library's distributions.
class Normal {
 public:
  explicit Normal(uint64_t seed) : rng_(seed) {}
  float operator()() {
    const double u1 = (static_cast<double>(rng_() >> 11) + 0.5) * 0x1.0p-53;
    const double u2 = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
    return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2));
  }

 private:
  std::mt19937_64 rng_;
};

// Positions up to the last target >= 0 of any row (at least 1).
int64_t UsedLength(const Batch& batch) {
  int64_t used = 1;
  for (int64_t r = 0; r < batch.rows; ++r) used = std::max(used, batch.used_positions(r));
  return used;
}

// int64 tokens and targets (rows x used) of the batch's first `used` positions.
std::pair<torch::Tensor, torch::Tensor> Tensors(const Batch& batch, int64_t used) {
  auto view = [&](const int32_t* data) {
    return torch::from_blob(const_cast<int32_t*>(data), {batch.rows, batch.length}, torch::kInt32)
        .slice(1, 0, used)
        .to(torch::kInt64);
  };
  return {view(batch.tokens), batch.targets != nullptr ? view(batch.targets) : torch::Tensor()};
}

}  // namespace

torch::Tensor TrackedLinear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b,
                            Recording* rec) {
  torch::Tensor y =
      w.scalar_type() == torch::kBFloat16 ? UpcastLinear(x, w) : torch::matmul(x, w.t());
  if (b.defined()) y = y + b;
  if (rec != nullptr) {
    rec->inputs.push_back(x.detach());
    rec->outputs.push_back(y);
  }
  return y;
}

torch::Tensor CausalAttention(const torch::Tensor& q, const torch::Tensor& k,
                              const torch::Tensor& v) {
  const int64_t rows = q.size(0), heads = q.size(1), length = q.size(2), head_dim = q.size(3);
  const int64_t group = heads / k.size(1);
  const torch::Tensor keys = group == 1 ? k : k.repeat_interleave(group, 1);
  const torch::Tensor values = group == 1 ? v : v.repeat_interleave(group, 1);
  const torch::Tensor causal =
      torch::ones({length, length}, torch::kBool).triu(1);  // true above the diagonal = masked
  torch::Tensor scores =
      torch::matmul(q, keys.transpose(-2, -1)) / std::sqrt(static_cast<double>(head_dim));
  scores = scores.masked_fill(causal, -std::numeric_limits<double>::infinity());
  return torch::matmul(torch::softmax(scores, -1), values)
      .transpose(1, 2)
      .reshape({rows, length, heads * head_dim});
}

int DecoderModel::AddParameter(const std::string& name, std::vector<int64_t> shape, float fill) {
  const torch::Dtype dtype = shape.size() == 2 ? matrix_dtype_ : torch::kFloat32;
  params_.push_back({name, torch::full(shape, fill, dtype).set_requires_grad(true), false});
  return static_cast<int>(params_.size()) - 1;
}

DecoderModel::LinearIndex DecoderModel::AddTrackedLinear(const std::string& prefix, int64_t out,
                                                         int64_t in, bool has_bias, bool residual) {
  LinearIndex index;
  index.weight = AddParameter(prefix + ".weight", {out, in}, 0.0f);
  params_.back().residual = residual;
  tracked_.push_back(index.weight);
  if (has_bias) {
    index.bias = AddParameter(prefix + ".bias", {out}, 0.0f);
    tracked_.push_back(index.bias);
  }
  layout_.Add(prefix, out, in, has_bias);
  return index;
}

void DecoderModel::Initialise(uint64_t seed) {
  torch::NoGradGuard no_grad;
  Normal normal(seed);
  const float residual_std = 0.02f / std::sqrt(2.0f * static_cast<float>(config_.layers));
  for (Parameter& param : params_) {
    if (param.value.dim() != 2) continue;
    const float std = param.residual ? residual_std : 0.02f;
    torch::Tensor drawn = torch::empty(param.value.sizes(), torch::kFloat32);
    float* p = drawn.data_ptr<float>();
    for (int64_t j = 0; j < drawn.numel(); ++j) p[j] = std * normal();
    param.value.copy_(drawn);  // rounded to bf16 for a bf16-held model
  }
}

void DecoderModel::HoldFloat32() {
  if (matrix_dtype_ == torch::kFloat32) return;
  torch::NoGradGuard no_grad;
  for (Parameter& param : params_) {
    if (param.value.scalar_type() != torch::kFloat32) {
      param.value = param.value.to(torch::kFloat32).set_requires_grad(true);
    }
  }
  matrix_dtype_ = torch::kFloat32;
}

std::vector<torch::Tensor> DecoderModel::Values() const {
  std::vector<torch::Tensor> out;
  for (const Parameter& param : params_) out.push_back(param.value);
  return out;
}

std::vector<torch::Tensor> DecoderModel::Tracked(const std::vector<torch::Tensor>& values) const {
  std::vector<torch::Tensor> out;
  for (int index : tracked_) out.push_back(values[static_cast<size_t>(index)]);
  return out;
}

torch::Tensor DecoderModel::Logits(const torch::Tensor& tokens) const {
  return Forward(Values(), tokens, nullptr);
}

std::vector<torch::Tensor> DecoderModel::TrainableParameters() {
  HoldFloat32();
  return Values();
}

std::vector<torch::Tensor> DecoderModel::TrackedParameters() {
  HoldFloat32();
  return Tracked(Values());
}

std::vector<DecoderModel::NamedShape> DecoderModel::ParameterShapes() const {
  std::vector<NamedShape> out;
  for (const Parameter& param : params_) out.push_back({param.name, param.value.sizes().vec()});
  return out;
}

std::vector<std::pair<std::string, torch::Tensor>> DecoderModel::NamedParameters() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const Parameter& param : params_) out.emplace_back(param.name, param.value.detach());
  return out;
}

absl::Status DecoderModel::LoadParameters(const TensorLookup& lookup, const std::string& source) {
  torch::NoGradGuard no_grad;
  for (Parameter& param : params_) {
    ASSIGN_OR_RETURN(torch::Tensor value, lookup(param.name));
    if (value.sizes() != param.value.sizes()) {
      return absl::DataLossError(absl::StrCat(source, ": tensor '", param.name, "' has shape [",
                                              absl::StrJoin(value.sizes().vec(), ","),
                                              "], the model needs [",
                                              absl::StrJoin(param.value.sizes().vec(), ","), "]"));
    }
    if (param.value.scalar_type() == torch::kBFloat16 && value.scalar_type() != torch::kBFloat16) {
      return absl::InvalidArgumentError(absl::StrCat(
          source, ": tensor '", param.name, "' is ", c10::toString(value.scalar_type()),
          " but the model holds its matrices as bf16; load it as float32"));
    }
    param.value.copy_(value);
    if (!torch::isfinite(param.value).all().item<bool>()) {
      return absl::DataLossError(
          absl::StrCat(source, ": tensor '", param.name, "' holds NaN or Inf"));
    }
  }
  return absl::OkStatus();
}

absl::Status DecoderModel::CheckBatch(const Batch& batch, bool need_targets) const {
  if (batch.rows <= 0) return absl::InvalidArgumentError("empty batch");
  if (!batch.is_sequence()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the ", config_.kind, " model takes token sequences, not feature vectors"));
  }
  if (batch.length < 1 || batch.length > config_.context_length) {
    return absl::InvalidArgumentError(absl::StrCat("sequences of ", batch.length,
                                                   " tokens; the model's context holds 1 to ",
                                                   config_.context_length));
  }
  const int64_t cells = batch.rows * batch.length;
  for (int64_t i = 0; i < cells; ++i) {
    if (batch.tokens[i] < 0 || batch.tokens[i] >= config_.num_classes) {
      return absl::InvalidArgumentError(
          absl::StrCat("token ", batch.tokens[i], " of row ", i / batch.length, " position ",
                       i % batch.length, " is not in [0, ", config_.num_classes, ")"));
    }
  }
  if (!need_targets) return absl::OkStatus();
  if (batch.targets == nullptr) return absl::InvalidArgumentError("the batch has no targets");
  for (int64_t i = 0; i < cells; ++i) {
    if (batch.targets[i] < kNoTarget || batch.targets[i] >= config_.num_classes) {
      return absl::InvalidArgumentError(
          absl::StrCat("target ", batch.targets[i], " of row ", i / batch.length, " position ",
                       i % batch.length, " is not in [-1, ", config_.num_classes, ")"));
    }
  }
  return absl::OkStatus();
}

// Per-row summed cross-entropy over targets >= 0 (rows).
torch::Tensor DecoderModel::RowLosses(const torch::Tensor& logits,
                                      const torch::Tensor& targets) const {
  torch::Tensor per_token = torch::nn::functional::cross_entropy(
      logits.reshape({-1, config_.num_classes}), targets.reshape({-1}),
      torch::nn::functional::CrossEntropyFuncOptions()
          .reduction(torch::kNone)
          .ignore_index(kNoTarget));
  return per_token.view(targets.sizes()).sum(1);
}

absl::StatusOr<Eigen::MatrixXf> DecoderModel::Predict(const Batch& batch) const {
  RETURN_IF_ERROR(CheckBatch(batch, /*need_targets=*/false));
  return CatchTorchErrors(
      absl::StrCat(config_.kind, " forward"), [&]() -> absl::StatusOr<Eigen::MatrixXf> {
        torch::NoGradGuard no_grad;
        torch::Tensor tokens = Tensors(batch, batch.length).first;
        torch::Tensor probs =
            torch::softmax(Logits(tokens), -1).reshape({-1, config_.num_classes}).contiguous();
        Eigen::MatrixXf out =
            Eigen::Map<const RowMatrixXf>(probs.data_ptr<float>(), probs.size(0), probs.size(1));
        return out;
      });
}

absl::StatusOr<BatchCapture> DecoderModel::Capture(const Batch& batch) const {
  RETURN_IF_ERROR(CheckBatch(batch, /*need_targets=*/true));
  return CatchTorchErrors(absl::StrCat(config_.kind, " capture"),
                          [&]() { return CaptureUnchecked(batch, nullptr, nullptr); });
}

absl::StatusOr<BatchCapture> DecoderModel::CaptureSampled(const Batch& batch,
                                                          const LabelSampler& sample,
                                                          BatchCapture* own) const {
  RETURN_IF_ERROR(CheckBatch(batch, /*need_targets=*/true));
  return CatchTorchErrors(absl::StrCat(config_.kind, " capture"),
                          [&]() { return CaptureUnchecked(batch, &sample, own); });
}

namespace {

// The capture of one backward pass: g from `grads` (one per tracked layer output), and, when
// `with_inputs`, a from the recorded inputs, zero where `live` (rows x used) is 0.
BatchCapture CaptureOf(const ParamLayout& layout, const Recording& rec,
                       const std::vector<torch::Tensor>& grads, const torch::Tensor& live,
                       const torch::Tensor& losses, bool with_inputs) {
  const int64_t rows = live.size(0), used = live.size(1), n = rows * used;
  BatchCapture capture;
  capture.samples = rows;
  capture.positions = used;
  capture.losses.assign(losses.data_ptr<float>(), losses.data_ptr<float>() + rows);
  for (size_t i = 0; i < layout.layers.size(); ++i) {
    const TrackedLayer& layer = layout.layers[i];
    LayerCapture lc;
    if (with_inputs) {
      lc.a.resize(n, layer.cols());
      torch::Tensor a = (rec.inputs[i] * live.unsqueeze(2)).reshape({n, layer.in}).contiguous();
      lc.a.leftCols(layer.in) = Eigen::Map<const RowMatrixXf>(a.data_ptr<float>(), n, layer.in);
      if (layer.has_bias) {
        lc.a.col(layer.in) =
            Eigen::Map<const Eigen::VectorXf>(live.contiguous().data_ptr<float>(), n);
      }
    }
    torch::Tensor g = grads[i].reshape({n, layer.out}).contiguous();
    lc.g = Eigen::Map<const RowMatrixXf>(g.data_ptr<float>(), n, layer.out);
    capture.layers.push_back(std::move(lc));
  }
  return capture;
}

}  // namespace

absl::StatusOr<BatchCapture> DecoderModel::CaptureUnchecked(const Batch& batch,
                                                            const LabelSampler* sample,
                                                            BatchCapture* own) const {
  const int64_t used = UsedLength(batch);
  auto [tokens, targets] = Tensors(batch, used);
  Recording rec;
  const torch::Tensor logits = Forward(Values(), tokens, &rec);
  // 1 up to each row's last target, 0 after it (padding).
  const torch::Tensor live = std::get<0>((targets >= 0).to(torch::kInt32).flip({1}).cummax(1))
                                 .flip({1})
                                 .to(torch::kFloat32);
  if (sample == nullptr) {
    const torch::Tensor losses = RowLosses(logits, targets);
    return CaptureOf(layout_, rec, torch::autograd::grad({losses.sum()}, rec.outputs), live,
                     losses, true);
  }
  const torch::Tensor probs =
      torch::softmax(logits.detach(), -1).reshape({-1, config_.num_classes}).contiguous();
  const Eigen::MatrixXf probabilities =
      Eigen::Map<const RowMatrixXf>(probs.data_ptr<float>(), probs.size(0), probs.size(1));
  ASSIGN_OR_RETURN(std::vector<int32_t> labels, (*sample)(probabilities, used));
  if (static_cast<int64_t>(labels.size()) != batch.rows * used) {
    return absl::InternalError(absl::StrCat("label sampler returned ", labels.size(),
                                            " labels for ", batch.rows * used, " positions"));
  }
  for (int32_t label : labels) {
    if (label < kNoTarget || label >= config_.num_classes) {
      return absl::InternalError(absl::StrCat("label sampler returned target ", label));
    }
  }
  const torch::Tensor sampled =
      torch::from_blob(labels.data(), {batch.rows, used}, torch::kInt32).to(torch::kInt64);
  const torch::Tensor sampled_losses = RowLosses(logits, sampled);
  BatchCapture capture = CaptureOf(
      layout_, rec,
      torch::autograd::grad({sampled_losses.sum()}, rec.outputs, {},
                            /*retain_graph=*/own != nullptr),
      live, sampled_losses, true);
  if (own != nullptr) {
    const torch::Tensor losses = RowLosses(logits, targets);
    *own = CaptureOf(layout_, rec, torch::autograd::grad({losses.sum()}, rec.outputs), live,
                     losses, false);
  }
  return capture;
}

absl::StatusOr<Eigen::MatrixXd> DecoderModel::CurvatureProduct(const Batch& batch,
                                                               const Eigen::MatrixXd& vectors,
                                                               Curvature kind) const {
  RETURN_IF_ERROR(CheckBatch(batch, /*need_targets=*/true));
  RETURN_IF_ERROR(CheckCurvatureVectors(vectors, layout_.total()));
  return CatchTorchErrors(absl::StrCat(config_.kind, " curvature product"),
                          [&]() -> absl::StatusOr<Eigen::MatrixXd> {
                            return CurvatureProductUnchecked(batch, vectors, kind);
                          });
}

Eigen::MatrixXd DecoderModel::CurvatureProductUnchecked(const Batch& batch,
                                                        const Eigen::MatrixXd& vectors,
                                                        Curvature kind) const {
  // float64 copies as local leaves: precise, and no autograd state shared between threads.
  std::vector<torch::Tensor> w;
  for (const Parameter& param : params_) {
    w.push_back(param.value.detach().to(torch::kFloat64).clone());
  }
  std::vector<torch::Tensor> params = Tracked(w);
  for (torch::Tensor& t : params) t.set_requires_grad(true);
  const int64_t used = UsedLength(batch);
  auto [tokens, targets] = Tensors(batch, used);
  const torch::Tensor logits = Forward(w, tokens, nullptr);
  const double rows = static_cast<double>(batch.rows);
  const torch::Tensor loss = RowLosses(logits, targets).sum() / rows;
  // Positions without a target (padding) carry no curvature.
  const torch::Tensor weight = (targets >= 0).to(torch::kFloat64).unsqueeze(2) / rows;
  return CurvatureVectorProducts(layout_, params, logits, loss, weight, kind, vectors);
}

Eigen::VectorXf DecoderModel::Parameters() const {
  Eigen::VectorXd flat(layout_.total());
  JoinFlat(layout_, Tracked(Values()), flat.data());
  return flat.cast<float>();
}

absl::Status DecoderModel::SetParameters(const Eigen::VectorXf& flat) {
  if (flat.size() != layout_.total()) {
    return absl::InvalidArgumentError(absl::StrCat("parameter vector has ", flat.size(),
                                                   " entries, model has ", layout_.total()));
  }
  if (!flat.allFinite()) return absl::InvalidArgumentError("parameter vector holds NaN or Inf");
  HoldFloat32();
  const Eigen::VectorXd wide = flat.cast<double>();
  std::vector<torch::Tensor> parts = SplitFlat(layout_, wide.data());
  std::vector<torch::Tensor> tracked = Tracked(Values());
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < tracked.size(); ++i) tracked[i].copy_(parts[i]);
  return absl::OkStatus();
}

SafetensorsWriter DecoderModel::WeightsFile() const {
  SafetensorsWriter writer;
  for (const Parameter& param : params_) {
    AddTensor(&writer, param.name, param.value.detach().contiguous());
  }
  writer.SetMetadata("format", "pt");
  return writer;
}

std::string DecoderModel::Fingerprint() const {
  return ChecksumHex(Xxh3(WeightsFile().Serialize()));
}

absl::Status DecoderModel::Save(const std::string& dir, const TrainRecipe& recipe) const {
  RETURN_IF_ERROR(MakeDirectories(dir));
  RETURN_IF_ERROR(WeightsFile().WriteAtomically(dir + "/model.safetensors"));
  RETURN_IF_ERROR(SaveRecipeTokenizer(recipe, dir));
  return WriteFileAtomically(dir + "/config.json", ModelConfigToJson(config_, recipe));
}

absl::StatusOr<torch::Tensor> TensorFromView(const TensorView& view, const std::string& what) {
  torch::Dtype dtype;
  switch (view.dtype) {
    case DType::kF32:
      dtype = torch::kFloat32;
      break;
    case DType::kBF16:
      dtype = torch::kBFloat16;
      break;
    case DType::kF16:
      dtype = torch::kFloat16;
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat(what, " is ", DTypeName(view.dtype),
                                                     "; only F32, BF16 and F16 weights are read"));
  }
  return torch::from_blob(const_cast<char*>(view.bytes.data()), view.shape, dtype);
}

std::unique_ptr<DecoderModel> NewDecoder(const ModelConfig& config, torch::Dtype matrix_dtype) {
  return config.kind == "llama" ? NewLlama(config, matrix_dtype) : NewGpt(config, matrix_dtype);
}

absl::StatusOr<std::unique_ptr<DecoderModel>> LoadDecoder(const ModelConfig& config,
                                                          const SafetensorsFile& weights) {
  std::vector<DType> matrix_dtypes;
  for (const std::string& name : weights.names()) {
    ASSIGN_OR_RETURN(TensorView view, weights.Get(name));
    if (view.shape.size() == 2) matrix_dtypes.push_back(view.dtype);
  }
  std::unique_ptr<DecoderModel> model = NewDecoder(config, ResidentMatrixDType(matrix_dtypes));
  const TensorLookup lookup = [&weights](const std::string& name) -> absl::StatusOr<torch::Tensor> {
    ASSIGN_OR_RETURN(TensorView view, weights.Get(name));
    return TensorFromView(view, absl::StrCat(weights.source(), ": tensor '", name, "'"));
  };
  RETURN_IF_ERROR(model->LoadParameters(lookup, weights.source()));
  return model;
}

}  // namespace tda
