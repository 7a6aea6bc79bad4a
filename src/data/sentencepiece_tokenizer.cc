#include "data/sentencepiece_tokenizer.h"

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "common/checksum.h"
#include "common/status_macros.h"

namespace tda {

SentencePieceTokenizer::SentencePieceTokenizer(std::string name,
                                               const SpecialTokens& special_tokens,
                                               std::unique_ptr<SentencePieceModel> model,
                                               std::string path)
    : Tokenizer(std::move(name), kVersion, special_tokens),
      model_(std::move(model)),
      path_(std::move(path)) {}

absl::StatusOr<std::unique_ptr<SentencePieceTokenizer>> SentencePieceTokenizer::Load(
    const std::string& path) {
  std::string bytes, error;
  RETURN_IF_ERROR(ReadFile(path, &bytes));
  std::unique_ptr<SentencePieceModel> model = SentencePieceModel::Parse(bytes, &error);
  if (model == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a SentencePiece model (", error, ")"));
  }
  SpecialTokens special_tokens;
  if (model->bos_id() >= 0) special_tokens.bos_id = model->bos_id();
  if (model->eos_id() >= 0) special_tokens.eos_id = model->eos_id();
  special_tokens.add_bos = special_tokens.bos_id.has_value();
  return std::unique_ptr<SentencePieceTokenizer>(
      new SentencePieceTokenizer(absl::StrCat("sentencepiece-", ChecksumHex(Xxh3(bytes))),
                                 special_tokens, std::move(model), path));
}

absl::StatusOr<std::vector<int32_t>> SentencePieceTokenizer::Encode(std::string_view text) const {
  std::vector<int> ids;
  std::string error;
  if (!model_->Encode(text, &ids, &error)) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": cannot encode the text: ", error));
  }
  return std::vector<int32_t>(ids.begin(), ids.end());
}

absl::StatusOr<std::string> SentencePieceTokenizer::Decode(absl::Span<const int32_t> ids) const {
  for (const int32_t id : ids) {
    if (id < 0 || id >= model_->pieces()) {
      return absl::InvalidArgumentError(absl::StrCat("token id ", id,
                                                     " is not in the vocabulary of ", path_, " (",
                                                     model_->pieces(), " pieces)"));
    }
  }
  std::string text, error;
  if (!model_->Decode(std::vector<int>(ids.begin(), ids.end()), &text, &error)) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": cannot decode the ids: ", error));
  }
  return text;
}

std::optional<int32_t> SentencePieceTokenizer::TokenId(std::string_view token) const {
  const int id = model_->PieceId(token);
  if (id < 0) return std::nullopt;
  return id;
}

}  // namespace tda
