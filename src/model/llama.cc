// The `llama` architecture: the decoder of the Llama family (Mistral without sliding windows,
// Qwen2 with q/k/v biases), as Hugging Face's LlamaForCausalLM computes it:
//   x = embed_tokens[tokens]
//   per layer: h = RMSNorm(x); q, k, v = h Wq, h Wk, h Wv (+ biases when configured);
//              q, k rotated by position (RoPE, rotate-half pairing, theta, optional Llama 3
//              frequency rescaling); x += o_proj(causal grouped-query attention(q, k, v));
//              h = RMSNorm(x); x += down_proj(silu(gate_proj h) * up_proj h)
//   logits = RMSNorm(x) lm_head^T, lm_head = embed_tokens when tied.
// RMSNorm(x) = w * x / sqrt(mean(x^2) + eps).
//
// Tracked layers (ParamLayout order, per layer l): model.layers.l.self_attn.{q,k,v,o}_proj,
// model.layers.l.mlp.{gate,up,down}_proj, then lm_head when untied (no bias). Embeddings and
// norms are trained but not attributed. Parameters carry Hugging Face names and layout, so a
// saved model.safetensors is also a Hugging Face checkpoint.
#include <torch/torch.h>

#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "model/bf16_weights.h"
#include "model/decoder_model.h"

namespace tda {
namespace {

torch::Tensor RmsNorm(const torch::Tensor& x, const torch::Tensor& w, double eps) {
  return w * (x * torch::rsqrt(x.pow(2).mean(-1, /*keepdim=*/true) + eps));
}

// The rotary inverse frequencies theta^(-2i/dh), i < dh/2, with Llama 3's rescaling when set:
// wavelengths longer than original/low_freq_factor are divided by factor, those shorter than
// original/high_freq_factor kept, those between interpolated smoothly.
std::vector<double> InverseFrequencies(const ModelConfig& config) {
  const int64_t head_dim = config.d_model / config.heads;
  std::vector<double> out;
  const RopeScaling& s = config.rope_scaling;
  for (int64_t i = 0; i < head_dim / 2; ++i) {
    double inv =
        std::pow(config.rope_theta, -2.0 * static_cast<double>(i) / static_cast<double>(head_dim));
    if (s.factor != 0) {
      const double original = static_cast<double>(s.original_max_position_embeddings);
      const double wavelength = 2 * M_PI / inv;
      if (wavelength > original / s.low_freq_factor) {
        inv /= s.factor;
      } else if (wavelength >= original / s.high_freq_factor) {
        const double smooth =
            (original / wavelength - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        inv = (1 - smooth) * inv / s.factor + smooth * inv;
      }
    }
    out.push_back(inv);
  }
  return out;
}

// x (rows x H x T x dh) rotated: x cos + rotate_half(x) sin, with cos/sin (T x dh) holding each
// frequency twice (first half, second half).
torch::Tensor Rotate(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  const int64_t half = x.size(-1) / 2;
  const torch::Tensor rotated = torch::cat({-x.slice(-1, half), x.slice(-1, 0, half)}, -1);
  return x * cos + rotated * sin;
}

class Llama final : public DecoderModel {
 public:
  Llama(const ModelConfig& config, torch::Dtype matrix_dtype)
      : DecoderModel(config, matrix_dtype), inverse_frequencies_(InverseFrequencies(config)) {
    const int64_t d = config.d_model, head_dim = d / config.heads;
    embed_ = AddParameter("model.embed_tokens.weight", {config.num_classes, d}, 0.0f);
    for (int64_t l = 0; l < config.layers; ++l) {
      const std::string p = absl::StrCat("model.layers.", l, ".");
      Layer layer;
      layer.input_norm = AddParameter(p + "input_layernorm.weight", {d}, 1.0f);
      layer.q = AddTrackedLinear(p + "self_attn.q_proj", config.heads * head_dim, d,
                                 config.qkv_bias, /*residual=*/false);
      layer.k = AddTrackedLinear(p + "self_attn.k_proj", config.kv_heads * head_dim, d,
                                 config.qkv_bias, /*residual=*/false);
      layer.v = AddTrackedLinear(p + "self_attn.v_proj", config.kv_heads * head_dim, d,
                                 config.qkv_bias, /*residual=*/false);
      layer.o = AddTrackedLinear(p + "self_attn.o_proj", d, config.heads * head_dim, config.o_bias,
                                 /*residual=*/true);
      layer.post_norm = AddParameter(p + "post_attention_layernorm.weight", {d}, 1.0f);
      layer.gate = AddTrackedLinear(p + "mlp.gate_proj", config.mlp_width, d, false, false);
      layer.up = AddTrackedLinear(p + "mlp.up_proj", config.mlp_width, d, false, false);
      layer.down = AddTrackedLinear(p + "mlp.down_proj", d, config.mlp_width, false, true);
      layers_.push_back(layer);
    }
    norm_ = AddParameter("model.norm.weight", {d}, 1.0f);
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
    const int64_t head_dim = c.d_model / c.heads;
    const torch::Tensor& embed = p[embed_];
    const auto options = torch::TensorOptions().dtype(ComputeDType(embed));
    // Angles (T x dh/2) computed in float64, then cos/sin in the dtype computed in.
    const torch::Tensor angles = torch::outer(
        torch::arange(length, torch::kFloat64),
        torch::tensor(inverse_frequencies_, torch::TensorOptions().dtype(torch::kFloat64)));
    const torch::Tensor both = torch::cat({angles, angles}, -1);
    const torch::Tensor cos = both.cos().to(options), sin = both.sin().to(options);
    auto linear = [&](const torch::Tensor& in, const LinearIndex& layer) {
      return TrackedLinear(in, At(p, layer.weight), At(p, layer.bias), rec);
    };
    auto heads_first = [&](const torch::Tensor& t, int64_t heads) {
      return t.view({rows, length, heads, head_dim}).transpose(1, 2);  // rows x H x T x dh
    };
    torch::Tensor x =
        AsCompute(embed.index_select(0, tokens.reshape({-1}))).view({rows, length, -1});
    for (const Layer& layer : layers_) {
      const torch::Tensor h = RmsNorm(x, p[layer.input_norm], c.rms_norm_eps);
      const torch::Tensor q = Rotate(heads_first(linear(h, layer.q), c.heads), cos, sin);
      const torch::Tensor k = Rotate(heads_first(linear(h, layer.k), c.kv_heads), cos, sin);
      const torch::Tensor v = heads_first(linear(h, layer.v), c.kv_heads);
      x = x + linear(CausalAttention(q, k, v), layer.o);
      const torch::Tensor m = RmsNorm(x, p[layer.post_norm], c.rms_norm_eps);
      // Separate statements: the recording order must be the layout's (gate before up).
      const torch::Tensor gate = linear(m, layer.gate);
      const torch::Tensor up = linear(m, layer.up);
      x = x + linear(torch::silu(gate) * up, layer.down);
    }
    x = RmsNorm(x, p[norm_], c.rms_norm_eps);
    if (head_.weight >= 0) return linear(x, head_);
    return TrackedLinear(x, embed, torch::Tensor(), nullptr);
  }

 private:
  struct Layer {
    int input_norm, post_norm;
    LinearIndex q, k, v, o, gate, up, down;
  };
  std::vector<double> inverse_frequencies_;
  int embed_, norm_;
  std::vector<Layer> layers_;
  LinearIndex head_;  // weight -1 when tied
};

}  // namespace

std::unique_ptr<DecoderModel> NewLlama(const ModelConfig& config, torch::Dtype matrix_dtype) {
  return std::make_unique<Llama>(config, matrix_dtype);
}

}  // namespace tda
