// A SentencePiece model (tokenizer.model of Llama 1/2, Mistral, ...) through libsentencepiece
// (sentencepiece_model.h): ids as SentencePieceProcessor::Encode gives them (equal to
// python3-sentencepiece's encode), decoding as its Decode. Special tokens written in the text
// are not matched (control symbols never come out of Encode), as in sentencepiece itself.
// Default special tokens: the model's bos / eos pieces, add_bos when it has a bos (Llama's).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "data/sentencepiece_model.h"
#include "data/tokenizer.h"

namespace tda {

class SentencePieceTokenizer : public Tokenizer {
 public:
  static constexpr int kVersion = 1;

  // kNotFound when `path` is missing; kInvalidArgument naming it when it is not a model.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<SentencePieceTokenizer>> Load(
      const std::string& path);

  [[nodiscard]] absl::StatusOr<std::vector<int32_t>> Encode(std::string_view text) const override;
  [[nodiscard]] absl::StatusOr<std::string> Decode(absl::Span<const int32_t> ids) const override;
  int64_t vocabulary_size() const override { return model_->pieces(); }
  std::optional<int32_t> TokenId(std::string_view token) const override;

 private:
  SentencePieceTokenizer(std::string name, const SpecialTokens& special_tokens,
                         std::unique_ptr<SentencePieceModel> model, std::string path);
  std::unique_ptr<SentencePieceModel> model_;
  std::string path_;  // for errors
};

}  // namespace tda
