// Sampling text from a language model (gpt or llama) with its tokenizer: the prompt's tokens
// after the start-of-document marker, then one token at a time from softmax(logits /
// temperature) restricted to the top-k tokens, until the end-of-document marker or max_tokens;
// the sampled tokens decoded to text. Rows are built as text queries build them
// (data/token_rows.h: MakeCompletionRow), so a generated completion can be attributed as is.
// Seeded: the same options give the same text.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "data/tokenizer.h"
#include "model/model.h"

namespace tda {

struct GenerateOptions {
  int64_t max_tokens = 200;   // tokens (bytes for a byte-level model)
  double temperature = 0.8;  // 0 = greedy (most likely token)
  int64_t top_k = 40;        // 0 = all tokens
  uint64_t seed = 0;
};

// The completion (without the prompt). When prompt + completion outgrow the context, the model
// sees the last context_length tokens. kInvalidArgument for a model that is not a language
// model, bad options, or a prompt with ids beyond the model's vocabulary; the tokenizer's error
// when it cannot encode or decode.
[[nodiscard]] absl::StatusOr<std::string> Generate(const Model& model, const Tokenizer& tokenizer,
                                                   std::string_view prompt,
                                                   const GenerateOptions& options);

}  // namespace tda
