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

#include "absl/strings/str_cat.h"
#include "common/safetensors.h"
#include "model/bf16_weights.h"
#include "model/decoder_model.h"
#include "model/torch_model.h"

namespace tda {
namespace {

constexpr double kLayerNormEps = 1e-5;

torch::Tensor LayerNorm(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  return torch::layer_norm(x, {x.size(-1)}, w, b, kLayerNormEps);
}

class Gpt final : public DecoderModel {
 public:
  // Parameters in GPT-2's order and names; the tracked Linear layers are registered in
  // ParamLayout order.
  Gpt(const ModelConfig& config, torch::Dtype matrix_dtype) : DecoderModel(config, matrix_dtype) {
    const int64_t d = config.d_model, m = config.mlp_width;
    wte_ = AddParameter("wte.weight", {config.num_classes, d}, 0.0f);
    wpe_ = AddParameter("wpe.weight", {config.context_length, d}, 0.0f);
    for (int64_t l = 0; l < config.layers; ++l) {
      const std::string p = absl::StrCat("h.", l, ".");
      Block b;
      b.ln1_w = AddParameter(p + "ln_1.weight", {d}, 1.0f);
      b.ln1_b = AddParameter(p + "ln_1.bias", {d}, 0.0f);
      b.qkv = AddTrackedLinear(p + "attn.c_attn", 3 * d, d, true, /*residual=*/false);
      b.proj = AddTrackedLinear(p + "attn.c_proj", d, d, true, /*residual=*/true);
      b.ln2_w = AddParameter(p + "ln_2.weight", {d}, 1.0f);
      b.ln2_b = AddParameter(p + "ln_2.bias", {d}, 0.0f);
      b.fc = AddTrackedLinear(p + "mlp.c_fc", m, d, true, /*residual=*/false);
      b.out = AddTrackedLinear(p + "mlp.c_proj", d, m, true, /*residual=*/true);
      blocks_.push_back(b);
    }
    lnf_w_ = AddParameter("ln_f.weight", {d}, 1.0f);
    lnf_b_ = AddParameter("ln_f.bias", {d}, 0.0f);
    if (!config.tied_head) {
      head_ = AddTrackedLinear("lm_head", config.num_classes, d, /*has_bias=*/false,
                               /*residual=*/false);
    }
  }

 protected:
  torch::Tensor Forward(const std::vector<torch::Tensor>& p, const torch::Tensor& tokens,
                        Recording* rec) const override {
    const ModelConfig& c = config();
    const int64_t rows = tokens.size(0), length = tokens.size(1);
    const int64_t heads = c.heads, head_dim = c.d_model / c.heads;
    torch::Tensor x =
        AsCompute(p[wte_].index_select(0, tokens.reshape({-1}))).view({rows, length, -1}) +
        AsCompute(p[wpe_].slice(0, 0, length)).unsqueeze(0);
    auto linear = [&](const torch::Tensor& in, const LinearIndex& layer) {
      return TrackedLinear(in, At(p, layer.weight), At(p, layer.bias), rec);
    };
    for (const Block& b : blocks_) {
      torch::Tensor qkv = linear(LayerNorm(x, p[b.ln1_w], p[b.ln1_b]), b.qkv);
      std::vector<torch::Tensor> parts = qkv.split(c.d_model, -1);
      auto heads_first = [&](const torch::Tensor& t) {
        return t.view({rows, length, heads, head_dim}).transpose(1, 2);  // rows x H x T x dh
      };
      x = x + linear(CausalAttention(heads_first(parts[0]), heads_first(parts[1]),
                                     heads_first(parts[2])),
                     b.proj);
      torch::Tensor hidden =
          torch::gelu(linear(LayerNorm(x, p[b.ln2_w], p[b.ln2_b]), b.fc), "tanh");
      x = x + linear(hidden, b.out);
    }
    x = LayerNorm(x, p[lnf_w_], p[lnf_b_]);
    if (head_.weight >= 0) return linear(x, head_);
    return TrackedLinear(x, p[wte_], torch::Tensor(), nullptr);
  }

 private:
  struct Block {
    int ln1_w, ln1_b, ln2_w, ln2_b;
    LinearIndex qkv, proj, fc, out;
  };
  int wte_, wpe_, lnf_w_, lnf_b_;
  std::vector<Block> blocks_;
  LinearIndex head_;  // weight -1 when tied
};

}  // namespace

std::unique_ptr<DecoderModel> NewGpt(const ModelConfig& config, torch::Dtype matrix_dtype) {
  return std::make_unique<Gpt>(config, matrix_dtype);
}

std::unique_ptr<TorchModel> CreateGpt(const ModelConfig& config, uint64_t seed) {
  std::unique_ptr<DecoderModel> gpt = NewGpt(config, torch::kFloat32);
  gpt->Initialise(seed);
  return gpt;
}

absl::StatusOr<std::unique_ptr<TorchModel>> LoadGpt(const ModelConfig& config,
                                                    const SafetensorsFile& weights) {
  absl::StatusOr<std::unique_ptr<DecoderModel>> gpt = LoadDecoder(config, weights);
  if (!gpt.ok()) return gpt.status();
  return std::unique_ptr<TorchModel>(std::move(*gpt));
}

}  // namespace tda
