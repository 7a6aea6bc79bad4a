// The `gpt` architecture: a decoder-only transformer over byte tokens (byte_tokenizer.h), shaped
// like GPT-2: token + position embeddings, pre-LayerNorm blocks of causal self-attention (fused
// qkv) and a GELU (tanh approximation) MLP, a final LayerNorm, and a head tied to the token
// embedding or its own Linear.
//
// Tracked layers (ParamLayout order, per block l): h.l.attn.c_attn (qkv), h.l.attn.c_proj,
// h.l.mlp.c_fc, h.l.mlp.c_proj, then lm_head when untied (no bias). Embeddings and LayerNorms
// are trained but not attributed: Parameters(), per-sample gradients, curvature products and
// EK-FAC cover the tracked layers only.
//
// A row's loss is the SUM of the cross-entropies of its targets >= 0. Capture runs on the
// batch cut after the last position with a target (causal attention: the cut changes nothing
// before it), so capture.positions can be shorter than the batch; `a` is zero at positions
// after a row's last target (their g is zero too), which keeps padding out of the A factor.
//
// Weights are saved with GPT-2 names (wte.weight, h.0.attn.c_attn.weight, ...) in PyTorch
// Linear layout (out x in); a Hugging Face GPT-2 file stores Conv1D weights as in x out
// (ImportGpt2 transposes them).
#include <torch/torch.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "common/checksum.h"
#include "common/safetensors.h"
#include "common/status_macros.h"
#include "data/byte_tokenizer.h"
#include "model/torch_model.h"

namespace tda {
namespace {

constexpr double kLayerNormEps = 1e-5;

struct Block {
  torch::Tensor ln1_w, ln1_b, qkv_w, qkv_b, proj_w, proj_b, ln2_w, ln2_b, fc_w, fc_b, out_w, out_b;
};

// Every parameter of the model (one dtype); the tracked ones are the Linear weights/biases.
struct Weights {
  torch::Tensor wte, wpe;
  std::vector<Block> blocks;
  torch::Tensor lnf_w, lnf_b;
  torch::Tensor head;  // undefined when tied

  // (name, tensor) in a fixed order, GPT-2 names.
  std::vector<std::pair<std::string, torch::Tensor*>> Named() {
    std::vector<std::pair<std::string, torch::Tensor*>> out = {{"wte.weight", &wte},
                                                               {"wpe.weight", &wpe}};
    for (size_t l = 0; l < blocks.size(); ++l) {
      Block& b = blocks[l];
      const std::string p = absl::StrCat("h.", l, ".");
      for (auto& [name, t] :
           std::vector<std::pair<std::string, torch::Tensor*>>{{"ln_1.weight", &b.ln1_w},
                                                               {"ln_1.bias", &b.ln1_b},
                                                               {"attn.c_attn.weight", &b.qkv_w},
                                                               {"attn.c_attn.bias", &b.qkv_b},
                                                               {"attn.c_proj.weight", &b.proj_w},
                                                               {"attn.c_proj.bias", &b.proj_b},
                                                               {"ln_2.weight", &b.ln2_w},
                                                               {"ln_2.bias", &b.ln2_b},
                                                               {"mlp.c_fc.weight", &b.fc_w},
                                                               {"mlp.c_fc.bias", &b.fc_b},
                                                               {"mlp.c_proj.weight", &b.out_w},
                                                               {"mlp.c_proj.bias", &b.out_b}}) {
        out.push_back({p + name, t});
      }
    }
    out.push_back({"ln_f.weight", &lnf_w});
    out.push_back({"ln_f.bias", &lnf_b});
    if (head.defined()) out.push_back({"lm_head.weight", &head});
    return out;
  }

  // The tracked parameters in ParamLayout order: weight, bias per layer (the head: weight).
  std::vector<torch::Tensor> Tracked() const {
    std::vector<torch::Tensor> out;
    for (const Block& b : blocks) {
      for (const torch::Tensor* t :
           {&b.qkv_w, &b.qkv_b, &b.proj_w, &b.proj_b, &b.fc_w, &b.fc_b, &b.out_w, &b.out_b}) {
        out.push_back(*t);
      }
    }
    if (head.defined()) out.push_back(head);
    return out;
  }

  // A copy in `dtype`; tracked tensors become fresh leaves requiring grad when `track`.
  Weights Copy(torch::Dtype dtype, bool track) const {
    Weights out = *this;
    for (auto& [name, t] : out.Named()) *t = t->detach().to(dtype).clone();
    if (track) {
      for (Block& b : out.blocks) {
        for (torch::Tensor* t :
             {&b.qkv_w, &b.qkv_b, &b.proj_w, &b.proj_b, &b.fc_w, &b.fc_b, &b.out_w, &b.out_b}) {
          t->set_requires_grad(true);
        }
      }
      if (out.head.defined()) out.head.set_requires_grad(true);
    }
    return out;
  }
};

// Inputs and outputs of the tracked Linear layers during one forward pass.
struct Recording {
  std::vector<torch::Tensor> inputs;   // detached
  std::vector<torch::Tensor> outputs;  // in the graph
};

torch::Tensor Linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b,
                     Recording* rec) {
  torch::Tensor y = torch::matmul(x, w.t());
  if (b.defined()) y = y + b;
  if (rec != nullptr) {
    rec->inputs.push_back(x.detach());
    rec->outputs.push_back(y);
  }
  return y;
}

torch::Tensor LayerNorm(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  return torch::layer_norm(x, {x.size(-1)}, w, b, kLayerNormEps);
}

// Logits (rows x length x vocabulary) of int64 tokens (rows x length).
torch::Tensor Forward(const ModelConfig& config, const Weights& w, const torch::Tensor& tokens,
                      Recording* rec) {
  const int64_t rows = tokens.size(0), length = tokens.size(1);
  const int64_t heads = config.heads, head_dim = config.d_model / config.heads;
  torch::Tensor x = w.wte.index_select(0, tokens.reshape({-1})).view({rows, length, -1}) +
                    w.wpe.slice(0, 0, length).unsqueeze(0);
  const torch::Tensor causal =
      torch::ones({length, length}, torch::kBool).triu(1);  // true above the diagonal = masked
  for (const Block& b : w.blocks) {
    torch::Tensor qkv = Linear(LayerNorm(x, b.ln1_w, b.ln1_b), b.qkv_w, b.qkv_b, rec);
    std::vector<torch::Tensor> parts = qkv.split(config.d_model, -1);
    auto heads_first = [&](const torch::Tensor& t) {
      return t.view({rows, length, heads, head_dim}).transpose(1, 2);  // rows x H x T x dh
    };
    torch::Tensor q = heads_first(parts[0]), k = heads_first(parts[1]), v = heads_first(parts[2]);
    torch::Tensor scores =
        torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(static_cast<double>(head_dim));
    scores = scores.masked_fill(causal, -std::numeric_limits<double>::infinity());
    torch::Tensor attended = torch::matmul(torch::softmax(scores, -1), v)
                                 .transpose(1, 2)
                                 .reshape({rows, length, config.d_model});
    x = x + Linear(attended, b.proj_w, b.proj_b, rec);
    torch::Tensor hidden =
        torch::gelu(Linear(LayerNorm(x, b.ln2_w, b.ln2_b), b.fc_w, b.fc_b, rec), "tanh");
    x = x + Linear(hidden, b.out_w, b.out_b, rec);
  }
  x = LayerNorm(x, w.lnf_w, w.lnf_b);
  if (w.head.defined()) return Linear(x, w.head, torch::Tensor(), rec);
  return torch::matmul(x, w.wte.t());
}

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

class Gpt final : public TorchModel {
 public:
  explicit Gpt(const ModelConfig& config) : config_(config) {
    const int64_t d = config.d_model, m = config.mlp_width;
    w_.wte = torch::zeros({config.num_classes, d});
    w_.wpe = torch::zeros({config.context_length, d});
    for (int64_t l = 0; l < config.layers; ++l) {
      Block b;
      b.ln1_w = torch::ones({d});
      b.ln1_b = torch::zeros({d});
      b.qkv_w = torch::zeros({3 * d, d});
      b.qkv_b = torch::zeros({3 * d});
      b.proj_w = torch::zeros({d, d});
      b.proj_b = torch::zeros({d});
      b.ln2_w = torch::ones({d});
      b.ln2_b = torch::zeros({d});
      b.fc_w = torch::zeros({m, d});
      b.fc_b = torch::zeros({m});
      b.out_w = torch::zeros({d, m});
      b.out_b = torch::zeros({d});
      w_.blocks.push_back(b);
      const std::string p = absl::StrCat("h.", l, ".");
      layout_.Add(p + "attn.c_attn", 3 * d, d, true);
      layout_.Add(p + "attn.c_proj", d, d, true);
      layout_.Add(p + "mlp.c_fc", m, d, true);
      layout_.Add(p + "mlp.c_proj", d, m, true);
    }
    w_.lnf_w = torch::ones({d});
    w_.lnf_b = torch::zeros({d});
    if (!config.tied_head) {
      w_.head = torch::zeros({config.num_classes, d});
      layout_.Add("lm_head", config.num_classes, d, /*has_bias=*/false);
    }
    for (auto& [name, t] : w_.Named()) t->set_requires_grad(true);
  }

  // GPT-2's initialisation: N(0, 0.02) for Linear weights and embeddings, N(0, 0.02 /
  // sqrt(2 layers)) for the projections into the residual stream, zero biases, unit LayerNorms.
  void Initialise(uint64_t seed) {
    torch::NoGradGuard no_grad;
    Normal normal(seed);
    const float residual_std = 0.02f / std::sqrt(2.0f * static_cast<float>(config_.layers));
    for (auto& [name, t] : w_.Named()) {
      const bool is_weight_matrix = t->dim() == 2;
      if (!is_weight_matrix) continue;
      const bool residual = name.find("c_proj") != std::string::npos;
      const float std = residual ? residual_std : 0.02f;
      float* p = t->data_ptr<float>();
      for (int64_t j = 0; j < t->numel(); ++j) p[j] = std * normal();
    }
  }

  const ModelConfig& config() const override { return config_; }
  const ParamLayout& layout() const override { return layout_; }

  torch::Tensor Logits(const torch::Tensor& tokens) const override {
    return Forward(config_, w_, tokens, nullptr);
  }

  std::vector<torch::Tensor> TrainableParameters() override {
    std::vector<torch::Tensor> out;
    for (auto& [name, t] : w_.Named()) out.push_back(*t);
    return out;
  }

  absl::Status CheckBatch(const Batch& batch, bool need_targets) const {
    if (batch.rows <= 0) return absl::InvalidArgumentError("empty batch");
    if (!batch.is_sequence()) {
      return absl::InvalidArgumentError("the gpt model takes token sequences, not feature vectors");
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

  // Positions up to the last target >= 0 of any row (at least 1).
  static int64_t UsedLength(const Batch& batch) {
    int64_t used = 1;
    for (int64_t r = 0; r < batch.rows; ++r) used = std::max(used, batch.used_positions(r));
    return used;
  }

  // int64 tokens and targets (rows x used) of the batch's first `used` positions.
  static std::pair<torch::Tensor, torch::Tensor> Tensors(const Batch& batch, int64_t used) {
    auto view = [&](const int32_t* data) {
      return torch::from_blob(const_cast<int32_t*>(data), {batch.rows, batch.length}, torch::kInt32)
          .slice(1, 0, used)
          .to(torch::kInt64);
    };
    return {view(batch.tokens), batch.targets != nullptr ? view(batch.targets) : torch::Tensor()};
  }

  // Per-row summed cross-entropy over targets >= 0 (rows).
  torch::Tensor RowLosses(const torch::Tensor& logits, const torch::Tensor& targets) const {
    torch::Tensor per_token = torch::nn::functional::cross_entropy(
        logits.reshape({-1, config_.num_classes}), targets.reshape({-1}),
        torch::nn::functional::CrossEntropyFuncOptions()
            .reduction(torch::kNone)
            .ignore_index(kNoTarget));
    return per_token.view(targets.sizes()).sum(1);
  }

  absl::StatusOr<Eigen::MatrixXf> Predict(const Batch& batch) const override {
    RETURN_IF_ERROR(CheckBatch(batch, /*need_targets=*/false));
    return CatchTorchErrors("gpt forward", [&]() -> absl::StatusOr<Eigen::MatrixXf> {
      torch::NoGradGuard no_grad;
      torch::Tensor tokens = Tensors(batch, batch.length).first;
      torch::Tensor probs =
          torch::softmax(Logits(tokens), -1).reshape({-1, config_.num_classes}).contiguous();
      Eigen::MatrixXf out =
          Eigen::Map<const RowMatrixXf>(probs.data_ptr<float>(), probs.size(0), probs.size(1));
      return out;
    });
  }

  absl::StatusOr<BatchCapture> Capture(const Batch& batch) const override {
    RETURN_IF_ERROR(CheckBatch(batch, /*need_targets=*/true));
    return CatchTorchErrors(
        "gpt capture", [&]() -> absl::StatusOr<BatchCapture> { return CaptureUnchecked(batch); });
  }

  BatchCapture CaptureUnchecked(const Batch& batch) const {
    const int64_t used = UsedLength(batch);
    auto [tokens, targets] = Tensors(batch, used);
    Recording rec;
    torch::Tensor losses = RowLosses(Forward(config_, w_, tokens, &rec), targets);
    std::vector<torch::Tensor> grads = torch::autograd::grad({losses.sum()}, rec.outputs);
    // 1 up to each row's last target, 0 after it (padding).
    torch::Tensor live = std::get<0>((targets >= 0).to(torch::kInt32).flip({1}).cummax(1))
                             .flip({1})
                             .to(torch::kFloat32);

    BatchCapture capture;
    capture.samples = batch.rows;
    capture.positions = used;
    capture.losses.assign(losses.data_ptr<float>(), losses.data_ptr<float>() + batch.rows);
    const int64_t n = batch.rows * used;
    for (size_t i = 0; i < layout_.layers.size(); ++i) {
      const TrackedLayer& layer = layout_.layers[i];
      LayerCapture lc;
      lc.a.resize(n, layer.cols());
      torch::Tensor a = (rec.inputs[i] * live.unsqueeze(2)).reshape({n, layer.in}).contiguous();
      lc.a.leftCols(layer.in) = Eigen::Map<const RowMatrixXf>(a.data_ptr<float>(), n, layer.in);
      if (layer.has_bias) {
        lc.a.col(layer.in) =
            Eigen::Map<const Eigen::VectorXf>(live.contiguous().data_ptr<float>(), n);
      }
      torch::Tensor g = grads[i].reshape({n, layer.out}).contiguous();
      lc.g = Eigen::Map<const RowMatrixXf>(g.data_ptr<float>(), n, layer.out);
      capture.layers.push_back(std::move(lc));
    }
    return capture;
  }

  absl::StatusOr<Eigen::MatrixXd> CurvatureProduct(const Batch& batch,
                                                   const Eigen::MatrixXd& vectors,
                                                   Curvature kind) const override {
    RETURN_IF_ERROR(CheckBatch(batch, /*need_targets=*/true));
    RETURN_IF_ERROR(CheckCurvatureVectors(vectors, layout_.total()));
    return CatchTorchErrors("gpt curvature product", [&]() -> absl::StatusOr<Eigen::MatrixXd> {
      return CurvatureProductUnchecked(batch, vectors, kind);
    });
  }

  Eigen::MatrixXd CurvatureProductUnchecked(const Batch& batch, const Eigen::MatrixXd& vectors,
                                            Curvature kind) const {
    // float64 copies as local leaves: precise, and no autograd state shared between threads.
    const Weights w = w_.Copy(torch::kFloat64, /*track=*/true);
    const std::vector<torch::Tensor> params = w.Tracked();
    const int64_t used = UsedLength(batch);
    auto [tokens, targets] = Tensors(batch, used);
    const torch::Tensor logits = Forward(config_, w, tokens, nullptr);
    const double rows = static_cast<double>(batch.rows);
    Eigen::MatrixXd out(vectors.rows(), vectors.cols());
    auto dot = [&](const std::vector<torch::Tensor>& a, const double* flat) {
      std::vector<torch::Tensor> v = SplitFlat(layout_, flat);
      torch::Tensor sum = torch::zeros({}, torch::kFloat64);
      for (size_t k = 0; k < a.size(); ++k) sum = sum + (a[k] * v[k]).sum();
      return sum;
    };
    if (kind == Curvature::kHessian) {
      torch::Tensor loss = RowLosses(logits, targets).sum() / rows;
      std::vector<torch::Tensor> grads =
          torch::autograd::grad({loss}, params, {}, /*retain_graph=*/true, /*create_graph=*/true);
      for (Eigen::Index c = 0; c < vectors.cols(); ++c) {
        std::vector<torch::Tensor> hv = torch::autograd::grad(
            {dot(grads, vectors.col(c).data())}, params, {}, /*retain_graph=*/true,
            /*create_graph=*/false, /*allow_unused=*/true);
        JoinFlat(layout_, hv, out.col(c).data());
      }
      return out;
    }
    // Gauss-Newton J^T H_out J v, J v by the double-backward trick (see mlp.cc); the output
    // Hessian is (diag(p) - p p^T) at positions with a target and zero elsewhere.
    torch::Tensor u = torch::zeros_like(logits).set_requires_grad(true);
    std::vector<torch::Tensor> jtu =
        torch::autograd::grad({logits}, params, {u}, /*retain_graph=*/true, /*create_graph=*/true);
    const torch::Tensor probs = torch::softmax(logits.detach(), -1);
    const torch::Tensor mask = (targets >= 0).to(torch::kFloat64).unsqueeze(2) / rows;
    for (Eigen::Index c = 0; c < vectors.cols(); ++c) {
      torch::Tensor jv = torch::autograd::grad({dot(jtu, vectors.col(c).data())}, {u}, {},
                                               /*retain_graph=*/true)[0];
      torch::Tensor hjv = (probs * jv - probs * (probs * jv).sum(-1, /*keepdim=*/true)) * mask;
      std::vector<torch::Tensor> jt = torch::autograd::grad({logits}, params, {hjv},
                                                            /*retain_graph=*/true);
      JoinFlat(layout_, jt, out.col(c).data());
    }
    return out;
  }

  Eigen::VectorXf Parameters() const override {
    Eigen::VectorXd flat(layout_.total());
    JoinFlat(layout_, w_.Tracked(), flat.data());
    return flat.cast<float>();
  }

  absl::Status SetParameters(const Eigen::VectorXf& flat) override {
    if (flat.size() != layout_.total()) {
      return absl::InvalidArgumentError(absl::StrCat("parameter vector has ", flat.size(),
                                                     " entries, model has ", layout_.total()));
    }
    if (!flat.allFinite()) return absl::InvalidArgumentError("parameter vector holds NaN or Inf");
    const Eigen::VectorXd wide = flat.cast<double>();
    std::vector<torch::Tensor> parts = SplitFlat(layout_, wide.data());
    std::vector<torch::Tensor> tracked = w_.Tracked();
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < tracked.size(); ++i) tracked[i].copy_(parts[i]);
    return absl::OkStatus();
  }

  SafetensorsWriter WeightsFile() const {
    SafetensorsWriter writer;
    Weights w = w_;  // shares storage; Named() needs a mutable object
    for (auto& [name, t] : w.Named()) {
      torch::Tensor c = t->detach().contiguous();
      writer.AddF32(name, c.sizes().vec(), c.data_ptr<float>());
    }
    writer.SetMetadata("format", "pt");
    return writer;
  }

  std::string Fingerprint() const override { return ChecksumHex(Xxh3(WeightsFile().Serialize())); }

  absl::Status Save(const std::string& dir, const TrainRecipe& recipe) const override {
    RETURN_IF_ERROR(MakeDirectories(dir));
    RETURN_IF_ERROR(WeightsFile().WriteAtomically(dir + "/model.safetensors"));
    return WriteFileAtomically(dir + "/config.json", ModelConfigToJson(config_, recipe));
  }

  absl::Status LoadWeights(const SafetensorsFile& file) {
    torch::NoGradGuard no_grad;
    for (auto& [name, t] : w_.Named()) {
      ASSIGN_OR_RETURN(TensorView v, file.Get(name, DType::kF32, t->sizes().vec()));
      std::memcpy(t->data_ptr<float>(), v.bytes.data(), v.bytes.size());
      if (!torch::isfinite(*t).all().item<bool>()) {
        return absl::DataLossError(absl::StrCat(file.source(), ": ", name, " holds NaN or Inf"));
      }
    }
    return absl::OkStatus();
  }

 private:
  ModelConfig config_;
  ParamLayout layout_;
  Weights w_;
};

}  // namespace

std::unique_ptr<TorchModel> CreateGpt(const ModelConfig& config, uint64_t seed) {
  auto gpt = std::make_unique<Gpt>(config);
  gpt->Initialise(seed);
  return gpt;
}

absl::StatusOr<std::unique_ptr<TorchModel>> LoadGpt(const ModelConfig& config,
                                                    const SafetensorsFile& weights) {
  auto gpt = std::make_unique<Gpt>(config);
  RETURN_IF_ERROR(gpt->LoadWeights(weights));
  return std::unique_ptr<TorchModel>(std::move(gpt));
}

}  // namespace tda
