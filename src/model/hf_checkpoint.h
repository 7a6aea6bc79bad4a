// Hugging Face model directories: config.json (hf_config.h) and the weights, model.safetensors
// or shards listed by model.safetensors.index.json ({"weight_map": {tensor: shard file}}), F32,
// BF16 or F16 tensors. Weight matrices stay bf16 in memory when all of the checkpoint's are BF16
// (decoder_model.h), else they are widened to float32; vectors are float32. Before any weight is
// read: every shard the index names must exist (kNotFound naming it), the checkpoint must fit in
// memory (its tensor bytes as stored plus the parameters as held, against MemAvailable,
// kResourceExhausted with the sizes), and
// every tensor name and shape must match the config (hf_tensors.h, all problems at once).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/model.h"

namespace tda {

struct HfLoadOptions {
  // Bytes of memory the load may use; -1 = MemAvailable from /proc/meminfo.
  int64_t available_memory_bytes = -1;
};

// A gpt or llama model from the Hugging Face model directory `dir`.
[[nodiscard]] absl::StatusOr<std::unique_ptr<Model>> LoadHfCheckpoint(
    const std::string& dir, const HfLoadOptions& options = {});

// A model of `config` (kind gpt or llama) from safetensors `files` holding Hugging Face
// tensor names (GPT-2's with or without the "transformer." prefix); `source` names them in
// errors. The checks of LoadHfCheckpoint but the shards'.
[[nodiscard]] absl::StatusOr<std::unique_ptr<Model>> LoadHfWeights(
    const ModelConfig& config, const std::vector<std::string>& files, const std::string& source,
    const HfLoadOptions& options = {});

// tda import --hf: LoadHfCheckpoint(dir), then a tda model directory at `out` (model.safetensors
// and config.json recording the architecture, as Model::Save writes them) with the tokenizer
// files of `dir` that exist (tokenizer.json, tokenizer.model, tokenizer_config.json,
// special_tokens_map.json, vocab.json, merges.txt, generation_config.json) copied beside them.
// kAlreadyExists when `out` exists and is not empty. Nothing is written on error: the directory
// is assembled under a temporary name and renamed into place.
[[nodiscard]] absl::StatusOr<std::unique_ptr<Model>> ImportHfCheckpoint(
    const std::string& dir, const std::string& out, const HfLoadOptions& options = {});

// How `model` holds its weight matrices in memory: "bf16" or "float32" ("float32" for models
// other than gpt and llama).
std::string HeldMatrixDType(const Model& model);

}  // namespace tda
