// Hugging Face config.json <-> tda's ModelConfig, for the architectures tda runs:
//   model_type llama, mistral, qwen2 -> kind "llama"; model_type gpt2 -> kind "gpt".
// Keys read (llama family): vocab_size, hidden_size, intermediate_size, num_hidden_layers,
// num_attention_heads, num_key_value_heads (default: heads), max_position_embeddings,
// rms_norm_eps (1e-6), rope_theta (10000), rope_scaling (null, "default" or "llama3" with
// factor, low_freq_factor, high_freq_factor, original_max_position_embeddings; key "rope_type"
// or "type"), tie_word_embeddings (false), attention_bias (llama: q/k/v/o biases; qwen2 always
// has q/k/v biases and no o bias), hidden_act (must be silu), head_dim (must be hidden/heads),
// mlp_bias (must be false), sliding_window (refused when it would apply).
// GPT-2: vocab_size, n_positions, n_embd, n_layer, n_head, n_inner (null: 4 n_embd),
// activation_function (gelu_new), layer_norm_epsilon (1e-5), tie_word_embeddings (true).
// Anything else about the architecture is refused with kInvalidArgument naming the key and file.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "model/model_config.h"

namespace tda {

// Parses config.json text; `source` names the file in errors.
[[nodiscard]] absl::StatusOr<ModelConfig> ModelConfigFromHfJson(const std::string& text,
                                                                const std::string& source);

// config.json for a gpt or llama config (model_type from hf_model_type, or gpt2), with the
// torch_dtype "float32" tda writes its weights in.
std::string HfJsonFromModelConfig(const ModelConfig& config);

}  // namespace tda
