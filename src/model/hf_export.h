// tda export-hf: a gpt or llama model as a Hugging Face model directory: config.json
// (hf_config.h: model_type gpt2 for gpt, the model's llama/mistral/qwen2 for llama) and
// model.safetensors (float32, Hugging Face names and layouts, hf_tensors.h), plus a marker file
// .tda-export. `out` must not exist, be empty, or hold an earlier export (the marker), which
// is replaced; anything else is kAlreadyExists. The directory is written under a temporary
// name and renamed into place, so nothing is left on error.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "model/model.h"

namespace tda {

[[nodiscard]] absl::Status ExportHfCheckpoint(const Model& model, const std::string& out);

}  // namespace tda
