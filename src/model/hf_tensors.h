// Where tda's decoder parameters live in a Hugging Face checkpoint, and the check that a
// checkpoint holds exactly them. Llama-family names are tda's names (model.embed_tokens.weight,
// model.layers.N.self_attn.q_proj.weight, ..., lm_head.weight) in the same layout. GPT-2's are
// tda's gpt names (wte.weight, h.N.attn.c_attn.weight, ...), optionally prefixed
// "transformer.", with the Conv1D weights (attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj)
// stored transposed (in x out).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/safetensors.h"
#include "model/decoder_model.h"

namespace tda {

struct HfTensor {
  std::string tda_name;
  std::string hf_name;
  std::vector<int64_t> hf_shape;
  bool transposed = false;  // stored as the transpose of tda's layout
};

// The checkpoint tensors of `model`'s parameters; `gpt2_prefix` ("" or "transformer.") is used
// by the gpt kind only.
std::vector<HfTensor> HfTensorsOf(const DecoderModel& model, const std::string& gpt2_prefix);

// Buffers some checkpoints carry that are not parameters, skipped: GPT-2's h.N.attn.bias and
// h.N.attn.masked_bias (causal masks), llama's self_attn.rotary_emb.inv_freq.
bool IsIgnoredHfBuffer(const std::string& name);

// OK when `stored` (name -> dtype and shape, all shards) holds every expected tensor with its
// shape in F32, BF16 or F16, and nothing else but ignored buffers. Otherwise kInvalidArgument
// naming `source` and listing, all at once, every missing tensor, every unexpected one and
// every mis-shaped or wrongly typed one with both shapes.
[[nodiscard]] absl::Status CheckHfTensors(const std::vector<HfTensor>& expected,
                                          const std::map<std::string, TensorInfo>& stored,
                                          const std::string& source);

}  // namespace tda
