// Importing a GPT-2-shaped model from a safetensors file with Hugging Face GPT-2 names
// (wte.weight, wpe.weight, h.N.ln_1.weight, h.N.attn.c_attn.weight, ..., ln_f.weight, optional
// lm_head.weight; an optional "transformer." prefix is accepted). Hugging Face's Conv1D layers
// store weights as in x out; they are transposed into tda's Linear layout (out x in). The shape
// (vocabulary, context, width, layers, MLP width, tied or untied head) is read from the tensor
// shapes; the number of heads is not visible in them and must be given. The vocabulary must be
// tda's byte vocabulary (257). Only F32 tensors are read.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "model/model.h"

namespace tda {

// kNotFound / kDataLoss for a missing or malformed file or tensor, kInvalidArgument when the
// shapes do not form a valid gpt config with `heads` heads.
absl::StatusOr<std::unique_ptr<Model>> ImportGpt2(const std::string& path, int64_t heads);

}  // namespace tda
