#include "data/token_rows.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "data/byte_tokenizer.h"

namespace tda {

absl::StatusOr<DocumentMarkers> DocumentMarkersOf(const Tokenizer& tokenizer) {
  const std::optional<int32_t> bos = tokenizer.bos_id(), eos = tokenizer.eos_id();
  if (!bos.has_value() && !eos.has_value()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "tokenizer ", tokenizer.name(),
        " has neither a BOS nor an EOS token, so documents cannot be delimited; set bos_token or "
        "eos_token in its tokenizer_config.json"));
  }
  const int32_t begin = bos.has_value() ? *bos : *eos;
  const int32_t end = eos.has_value() ? *eos : *bos;
  return DocumentMarkers(begin, end);
}

absl::Status CheckVocabularyFits(const Tokenizer& tokenizer, int64_t vocabulary,
                                 const std::string& model) {
  if (vocabulary >= tokenizer.vocabulary_size()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      model, " has vocab_size ", vocabulary, ", smaller than the ", tokenizer.vocabulary_size(),
      " ids of its tokenizer ", tokenizer.name(),
      ": the model cannot score every token. Use the tokenizer the model was trained with"));
}

absl::Status CheckIdsInVocabulary(const std::vector<int32_t>& ids, int64_t vocabulary,
                                  std::string_view what) {
  for (const int32_t id : ids) {
    if (id < 0 || id >= vocabulary) {
      return absl::InvalidArgumentError(
          absl::StrCat(std::string(what), " has token id ", id, ", beyond the model's vocabulary of ",
                       vocabulary, "; the model was not trained with this tokenizer"));
    }
  }
  return absl::OkStatus();
}

absl::Status MakeCompletionRow(const Tokenizer& tokenizer, int64_t vocabulary,
                               std::string_view prompt, std::string_view completion,
                               int64_t max_length, std::vector<int32_t>* tokens,
                               std::vector<int32_t>* targets) {
  ASSIGN_OR_RETURN(const DocumentMarkers markers, DocumentMarkersOf(tokenizer));
  ASSIGN_OR_RETURN(const std::vector<int32_t> p, tokenizer.Encode(prompt));
  ASSIGN_OR_RETURN(const std::vector<int32_t> c, tokenizer.Encode(completion));
  if (c.empty()) return absl::InvalidArgumentError("the completion is empty");
  const bool bytes = tokenizer.name() == ByteTokenizer().name();
  const int64_t length = static_cast<int64_t>(p.size() + c.size());
  if (length > max_length) {
    return absl::InvalidArgumentError(absl::StrCat("prompt + completion are ", length,
                                                   bytes ? " bytes" : " tokens",
                                                   "; the model's context holds ", max_length));
  }
  RETURN_IF_ERROR(CheckIdsInVocabulary(p, vocabulary, "the prompt"));
  RETURN_IF_ERROR(CheckIdsInVocabulary(c, vocabulary, "the completion"));
  tokens->assign(static_cast<size_t>(length), markers.begin);
  targets->assign(static_cast<size_t>(length), kNoTarget);
  std::copy(p.begin(), p.end(), tokens->begin() + 1);
  std::copy(c.begin(), c.end() - 1, tokens->begin() + 1 + static_cast<int64_t>(p.size()));
  std::copy(c.begin(), c.end(), targets->begin() + static_cast<int64_t>(p.size()));
  return absl::OkStatus();
}

absl::StatusOr<ScoredText> ScoresPerByte(const Tokenizer& tokenizer, const DocumentMarkers& markers,
                                         absl::Span<const int32_t> tokens,
                                         absl::Span<const int32_t> targets,
                                         absl::Span<const double> position_scores) {
  const size_t length = std::min({tokens.size(), targets.size(), position_scores.size()});
  std::vector<int32_t> ids;
  std::vector<double> id_scores;
  size_t r = 0;
  for (; r < length; ++r) {
    const int32_t predicted = targets[r] >= 0         ? targets[r]
                              : r + 1 < tokens.size() ? tokens[r + 1]
                                                      : markers.end;
    if (predicted == markers.end) break;
    ids.push_back(predicted);
    id_scores.push_back(position_scores[r]);
  }
  const bool ends = r < length;
  ScoredText out;
  ASSIGN_OR_RETURN(out.text, tokenizer.Decode(ids));
  const size_t total = out.text.size();
  out.byte_scores.assign(total + (ends ? 1 : 0), 0.0f);
  // Each token's span ends where the decoded prefix through it ends (clamped: a prefix cut
  // inside a multi-byte character may decode to a replacement character). The prefix's length
  // is found from the last kDecodeWindow tokens only: a token adds
  // |decode(window through it)| - |decode(window before it)| bytes, which equals what it adds to
  // the whole prefix for tokenizers whose decoding depends on a few tokens of left context (a
  // word-start space, the bytes of one UTF-8 character), so a row costs O(length x window)
  // decoded tokens instead of O(length^2).
  constexpr size_t kDecodeWindow = 8;
  auto decoded_size = [&](size_t from, size_t to) -> absl::StatusOr<size_t> {
    ASSIGN_OR_RETURN(const std::string piece,
                     tokenizer.Decode(absl::MakeConstSpan(ids.data() + from, to - from)));
    return piece.size();
  };
  double pending = 0;  // scores of tokens that spell no bytes yet
  size_t begin = 0;
  int64_t prefix = 0;  // decoded size of ids[0, i]
  for (size_t i = 0; i < ids.size(); ++i) {
    size_t end = total;
    if (i + 1 < ids.size()) {
      if (i < kDecodeWindow) {
        ASSIGN_OR_RETURN(const size_t whole, decoded_size(0, i + 1));
        prefix = static_cast<int64_t>(whole);
      } else {
        ASSIGN_OR_RETURN(const size_t with, decoded_size(i - kDecodeWindow, i + 1));
        ASSIGN_OR_RETURN(const size_t without, decoded_size(i - kDecodeWindow, i));
        prefix += static_cast<int64_t>(with) - static_cast<int64_t>(without);
      }
      end = std::clamp(static_cast<size_t>(std::max<int64_t>(prefix, 0)), begin, total);
    }
    pending += id_scores[i];
    if (end == begin) continue;
    const double each = pending / static_cast<double>(end - begin);
    for (size_t b = begin; b < end; ++b) out.byte_scores[b] = static_cast<float>(each);
    pending = 0;
    begin = end;
  }
  if (ends) {
    out.byte_scores.back() = static_cast<float>(pending + position_scores[r]);
  } else if (!out.byte_scores.empty()) {
    out.byte_scores.back() += static_cast<float>(pending);
  }
  return out;
}

}  // namespace tda
