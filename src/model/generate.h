// Sampling text from a gpt model: the prompt's bytes after the start-of-document token, then
// one byte at a time from softmax(logits / temperature) restricted to the top-k tokens, until
// the end-of-document token or max_tokens. Seeded: the same options give the same text.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "model/model.h"

namespace tda {

struct GenerateOptions {
  int64_t max_tokens = 200;
  double temperature = 0.8;  // 0 = greedy (most likely byte)
  int64_t top_k = 40;        // 0 = all tokens
  uint64_t seed = 0;
};

// The completion (without the prompt). When prompt + completion outgrow the context, the model
// sees the last context_length tokens. kInvalidArgument for a non-gpt model or bad options.
absl::StatusOr<std::string> Generate(const Model& model, std::string_view prompt,
                                     const GenerateOptions& options);

}  // namespace tda
