#include "data/text_document.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/checksum.h"
#include "data/byte_tokenizer.h"

namespace tda {

bool IsHeldOut(const std::string& id, uint64_t split_seed, double held_out_fraction) {
  const uint64_t h = Xxh3(absl::StrCat(split_seed, ":", id));
  return static_cast<double>(h >> 11) * 0x1.0p-53 < held_out_fraction;
}

absl::Status ValidateTextSplitOptions(const TextSplitOptions& options) {
  if (options.context_length <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("context length must be > 0, got ", options.context_length));
  }
  if (!(options.held_out_fraction >= 0 && options.held_out_fraction < 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("held-out fraction must be in [0, 1), got ", options.held_out_fraction));
  }
  if (options.chunk_stride < 0 || options.chunk_stride > options.context_length) {
    return absl::InvalidArgumentError(absl::StrCat("chunk stride must be in [0, context length ",
                                                   options.context_length, "], got ",
                                                   options.chunk_stride));
  }
  return absl::OkStatus();
}

Dataset SplitDocuments(std::vector<TextDocument> docs, const std::string& name, Split split,
                       const TextSplitOptions& options, int64_t* truncated) {
  const bool want_held_out = split == Split::kTest;
  std::vector<TextDocument> chosen;
  for (TextDocument& doc : docs) {
    if (options.limit > 0 && static_cast<int64_t>(chosen.size()) >= options.limit) break;
    if (IsHeldOut(doc.id, options.split_seed, options.held_out_fraction) == want_held_out) {
      chosen.push_back(std::move(doc));
    }
  }
  return DocumentsToDataset(chosen, absl::StrCat(name, want_held_out ? "/held-out" : "/train"),
                            options.context_length, truncated);
}

Dataset DocumentsToDataset(const std::vector<TextDocument>& docs, const std::string& name,
                           int64_t context_length, int64_t* truncated) {
  Dataset data;
  data.name = name;
  data.sequence_length = context_length;
  const size_t cells = docs.size() * static_cast<size_t>(context_length);
  data.tokens.resize(cells);
  data.targets.resize(cells);
  int64_t cut = 0;
  for (size_t i = 0; i < docs.size(); ++i) {
    const size_t at = i * static_cast<size_t>(context_length);
    cut += WriteDocumentRow(docs[i].text, context_length, &data.tokens[at], &data.targets[at]);
    const int64_t masked = std::min(docs[i].prompt_bytes, context_length);
    std::fill_n(&data.targets[at], masked, kNoTarget);
    data.ids.push_back(docs[i].id);
    data.sources.push_back(docs[i].source);
    data.previews.push_back(docs[i].text);
  }
  if (truncated != nullptr) *truncated = cut;
  return data;
}

}  // namespace tda
