// Rows of any tokenizer (data/tokenizer.h): the markers around a document, a query's completion
// row, and the bytes each token of a row spells, so that per-token scores can be shown per byte.
//
// Per-byte contract (ScoresPerByte): row position r predicts one token; the token's score is
// spread evenly over the bytes it decodes to (byte tokens: one byte each, so nothing changes);
// a token that decodes to no bytes (a SentencePiece word-start piece merged into the next, a
// special token) gives its score to the next token's bytes; the score of predicting the end
// of the document is the last entry. The byte scores sum to the row's score.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "data/chunking.h"
#include "data/tokenizer.h"

namespace tda {

// The byte tokenizer: kEndOfDocument both. Others: BOS first (EOS when there is none), EOS last
// (BOS when there is none). kFailedPrecondition naming the tokenizer when it has neither.
[[nodiscard]] absl::StatusOr<DocumentMarkers> DocumentMarkersOf(const Tokenizer& tokenizer);

// kFailedPrecondition naming both numbers when the model (of `vocabulary` output classes,
// described by `model` in the message) cannot take every id of the tokenizer.
[[nodiscard]] absl::Status CheckVocabularyFits(const Tokenizer& tokenizer, int64_t vocabulary,
                                               const std::string& model);

// kInvalidArgument naming the first id of `ids` (encoded from `what`, e.g. "the prompt") that is
// not in [0, vocabulary): the model was not trained with this tokenizer.
[[nodiscard]] absl::Status CheckIdsInVocabulary(const std::vector<int32_t>& ids,
                                                int64_t vocabulary, std::string_view what);

// The completion row of (prompt, completion), prompt and completion encoded separately:
//   inputs  [begin, p..., c_0, ..., c_{m-2}]   targets [-1 (one per prompt token), c_0 .. c_{m-1}]
// kInvalidArgument when the completion has no tokens, the row is longer than `max_length`, or a
// token id is not below `vocabulary` (the model's).
[[nodiscard]] absl::Status MakeCompletionRow(const Tokenizer& tokenizer, int64_t vocabulary,
                                             std::string_view prompt, std::string_view completion,
                                             int64_t max_length, std::vector<int32_t>* tokens,
                                             std::vector<int32_t>* targets);

// A row's text and its scores per byte (see the contract above): `byte_scores` holds one score
// per byte of `text`, then one for the end of the document when the row predicts it.
struct ScoredText {
  std::string text;
  std::vector<float> byte_scores;
};

// The text row `tokens`/`targets` predicts (position r: targets[r], or the next input where it
// has no target, e.g. a prompt), up to the end marker, with `position_scores` (one per position)
// per byte.
[[nodiscard]] absl::StatusOr<ScoredText> ScoresPerByte(const Tokenizer& tokenizer,
                                                       const DocumentMarkers& markers,
                                                       absl::Span<const int32_t> tokens,
                                                       absl::Span<const int32_t> targets,
                                                       absl::Span<const double> position_scores);

}  // namespace tda
