#include "data/byte_tokenizer.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "data/token_rows.h"

namespace tda {

std::vector<int32_t> EncodeBytes(std::string_view text) {
  std::vector<int32_t> out(text.size());
  for (size_t i = 0; i < text.size(); ++i) out[i] = static_cast<unsigned char>(text[i]);
  return out;
}

std::string DecodeBytes(const std::vector<int32_t>& tokens) {
  std::string out;
  for (int32_t t : tokens) {
    if (t >= 0 && t < 256) out.push_back(static_cast<char>(t));
  }
  return out;
}

namespace {

SpecialTokens EndOfDocumentAround() {
  SpecialTokens special;
  special.bos_id = special.eos_id = kEndOfDocument;
  special.add_bos = true;
  return special;
}

}  // namespace

ByteTokenizer::ByteTokenizer() : Tokenizer("byte", 1, EndOfDocumentAround()) {}

absl::StatusOr<std::vector<int32_t>> ByteTokenizer::Encode(std::string_view text) const {
  return EncodeBytes(text);
}

absl::StatusOr<std::string> ByteTokenizer::Decode(absl::Span<const int32_t> ids) const {
  for (const int32_t id : ids) {
    if (id < 0 || id >= kByteVocabulary) {
      return absl::InvalidArgumentError(absl::StrCat(
          "token id ", id, " is not in the byte tokenizer's vocabulary of ", kByteVocabulary));
    }
  }
  return DecodeBytes(std::vector<int32_t>(ids.begin(), ids.end()));
}

std::optional<int32_t> ByteTokenizer::TokenId(std::string_view token) const {
  if (token.size() != 1) return std::nullopt;
  return static_cast<unsigned char>(token[0]);
}

bool WriteDocumentRow(std::string_view text, int64_t length, int32_t* tokens, int32_t* targets) {
  const int64_t n = static_cast<int64_t>(text.size());
  for (int64_t t = 0; t < length; ++t) {
    tokens[t] = t == 0   ? kEndOfDocument
                : t <= n ? static_cast<unsigned char>(text[t - 1])
                         : kEndOfDocument;
    targets[t] = t < n ? static_cast<unsigned char>(text[t]) : t == n ? kEndOfDocument : kNoTarget;
  }
  return n + 1 > length;
}

absl::Status MakeCompletionRow(std::string_view prompt, std::string_view completion,
                               int64_t max_length, std::vector<int32_t>* tokens,
                               std::vector<int32_t>* targets) {
  return MakeCompletionRow(ByteTokenizer(), kByteVocabulary, prompt, completion, max_length, tokens,
                           targets);
}

std::string OneLinePreview(std::string_view text, size_t max_bytes) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  std::string out;
  for (size_t i = 0; i < text.size() && i < max_bytes; ++i) {
    const char c = text[i];
    if (c == '\n') {
      out += "\u23ce";
    } else {
      out.push_back(c == '\t' || c == '\r' ? ' ' : c);
    }
  }
  if (text.size() > max_bytes) out += "\u2026";
  return out;
}

}  // namespace tda
