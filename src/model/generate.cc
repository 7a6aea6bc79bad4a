#include "model/generate.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "data/token_rows.h"
#include "model/torch_model.h"

namespace tda {

absl::StatusOr<std::string> Generate(const Model& model, const Tokenizer& tokenizer,
                                     std::string_view prompt, const GenerateOptions& options) {
  const auto* decoder = dynamic_cast<const TorchModel*>(&model);
  if (decoder == nullptr || !model.config().is_sequence()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "generation needs a language model (gpt or llama), got kind '", model.config().kind, "'"));
  }
  if (options.max_tokens < 0 || options.top_k < 0 || !(options.temperature >= 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_tokens, top_k and temperature must be >= 0, got ", options.max_tokens,
                     ", ", options.top_k, ", ", options.temperature));
  }
  const int64_t vocabulary = model.config().num_classes;
  ASSIGN_OR_RETURN(const DocumentMarkers markers, DocumentMarkersOf(tokenizer));
  ASSIGN_OR_RETURN(const std::vector<int32_t> prompt_ids, tokenizer.Encode(prompt));
  RETURN_IF_ERROR(CheckIdsInVocabulary(prompt_ids, vocabulary, "the prompt"));
  std::vector<int32_t> sampled;
  RETURN_IF_ERROR(CatchTorchErrors("generate", [&]() -> absl::Status {
    torch::NoGradGuard no_grad;
    const int64_t context = model.config().context_length;
    std::vector<int64_t> tokens = {markers.begin};
    tokens.insert(tokens.end(), prompt_ids.begin(), prompt_ids.end());
    std::mt19937_64 rng(options.seed);
    for (int64_t step = 0; step < options.max_tokens; ++step) {
      const int64_t start = std::max<int64_t>(0, static_cast<int64_t>(tokens.size()) - context);
      torch::Tensor input =
          torch::tensor(std::vector<int64_t>(tokens.begin() + start, tokens.end()), torch::kInt64)
              .unsqueeze(0);
      torch::Tensor logits =
          decoder->Logits(input).select(1, input.size(1) - 1).squeeze(0).to(torch::kFloat64);
      int64_t next = 0;
      if (options.temperature == 0) {
        next = logits.argmax().item<int64_t>();
      } else {
        logits = logits / options.temperature;
        if (options.top_k > 0 && options.top_k < logits.size(0)) {
          const double kth = std::get<0>(logits.topk(options.top_k)).min().item<double>();
          logits = logits.masked_fill(logits < kth, -std::numeric_limits<double>::infinity());
        }
        torch::Tensor probs = torch::softmax(logits, 0).contiguous();
        const double* p = probs.data_ptr<double>();
        // Inverse-CDF with a 53-bit uniform from the raw generator (portable across libraries).
        const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53;
        double cumulative = 0;
        for (int64_t t = 0; t < probs.size(0); ++t) {
          if (p[t] <= 0) continue;
          next = t;
          cumulative += p[t];
          if (u < cumulative) break;
        }
      }
      if (next == markers.end) break;
      tokens.push_back(next);
      sampled.push_back(static_cast<int32_t>(next));
    }
    return absl::OkStatus();
  }));
  // Decoded after the prompt, then cut: a piece that starts a word (SentencePiece's leading
  // space) keeps its space, which decoding the sampled pieces alone would drop.
  std::vector<int32_t> whole = prompt_ids;
  whole.insert(whole.end(), sampled.begin(), sampled.end());
  ASSIGN_OR_RETURN(const std::string head, tokenizer.Decode(prompt_ids));
  ASSIGN_OR_RETURN(std::string text, tokenizer.Decode(whole));
  if (text.compare(0, head.size(), head) == 0) return text.substr(head.size());
  return tokenizer.Decode(sampled);
}

}  // namespace tda
