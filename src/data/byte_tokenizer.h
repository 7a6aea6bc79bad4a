// Byte-level tokenizer for the gpt model kind: token b in [0, 256) is the byte b, token 256
// marks the end of a document (and, as the first input, its start). No vocabulary files.
//
// A document row predicts every byte and then the end of the document:
//   inputs  [EOD, b0, b1, ..., b_{n-1}]      targets [b0, b1, ..., b_{n-1}, EOD]
// A completion row (a query) predicts only the completion bytes c given the prompt p:
//   inputs  [EOD, p..., c_0, ..., c_{m-2}]   targets [-1 (one per prompt byte), c_0, ..., c_{m-1}]
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "data/tokenizer.h"

namespace tda {

inline constexpr int32_t kEndOfDocument = 256;
inline constexpr int64_t kByteVocabulary = 257;
inline constexpr int32_t kNoTarget = -1;

// The text's bytes as tokens, and back (the end-of-document token is dropped).
std::vector<int32_t> EncodeBytes(std::string_view text);
std::string DecodeBytes(const std::vector<int32_t>& tokens);

// Writes the document row of `text` into tokens[0, length) and targets[0, length): cut to
// `length` positions when longer (then the last targets are bytes, not EOD), padded with
// inputs EOD and targets kNoTarget when shorter. Returns true when the text was cut.
bool WriteDocumentRow(std::string_view text, int64_t length, int32_t* tokens, int32_t* targets);

// The completion row of (prompt, completion), of prompt.size() + completion.size() positions:
// MakeCompletionRow of data/token_rows.h with the byte tokenizer. kInvalidArgument when the
// completion is empty or the row is longer than `max_length`.
[[nodiscard]] absl::Status MakeCompletionRow(std::string_view prompt, std::string_view completion,
                               int64_t max_length, std::vector<int32_t>* tokens,
                               std::vector<int32_t>* targets);

// The byte tokenizer through the Tokenizer interface (name "byte", version 1): Encode is
// EncodeBytes, Decode is DecodeBytes (kInvalidArgument for ids outside [0, 257)); the
// end-of-document token is both BOS (a document row's first input) and EOS.
class ByteTokenizer : public Tokenizer {
 public:
  ByteTokenizer();
  [[nodiscard]] absl::StatusOr<std::vector<int32_t>> Encode(std::string_view text) const override;
  [[nodiscard]] absl::StatusOr<std::string> Decode(absl::Span<const int32_t> ids) const override;
  int64_t vocabulary_size() const override { return kByteVocabulary; }
  // A one-byte string's byte.
  std::optional<int32_t> TokenId(std::string_view token) const override;
};

// A one-line preview of a document for tables and index metadata: line breaks shown as "⏎",
// tabs and carriage returns as spaces, cut after `max_bytes` bytes with "…" appended.
std::string OneLinePreview(std::string_view text, size_t max_bytes = 200);

}  // namespace tda
