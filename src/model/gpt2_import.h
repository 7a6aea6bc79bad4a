// Importing a GPT-2-shaped model from one safetensors file with Hugging Face GPT-2 names
// (wte.weight, wpe.weight, h.N.ln_1.weight, h.N.attn.c_attn.weight, ..., ln_f.weight, optional
// lm_head.weight; an optional "transformer." prefix is accepted), F32, BF16 or F16. The shape
// (vocabulary, context, width, layers, MLP width, tied or untied head) is read from the tensor
// shapes; the number of heads is not visible in them and must be given. A Hugging Face model
// directory (config.json + model.safetensors) needs no such hint: LoadHfCheckpoint
// (hf_checkpoint.h) reads it, with the same names, transposes and checks (hf_tensors.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "model/model.h"

namespace tda {

// kNotFound / kDataLoss for a missing or malformed file, kInvalidArgument when the shapes do not
// form a valid gpt config with `heads` heads or the tensors do not match it (all named).
[[nodiscard]] absl::StatusOr<std::unique_ptr<Model>> ImportGpt2(const std::string& path,
                                                                int64_t heads);

}  // namespace tda
