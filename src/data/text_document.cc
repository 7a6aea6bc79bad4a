#include "data/text_document.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/checksum.h"
#include "common/status_macros.h"
#include "data/byte_tokenizer.h"
#include "data/chunking.h"

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

absl::Status CheckChunkableId(const std::string& document_id, int64_t chunk_stride) {
  if (chunk_stride <= 0 || !LooksLikeChunkId(document_id)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("document id '", document_id,
                   "' ends like a chunk id (#<digits>): with chunking (chunk stride ", chunk_stride,
                   ") its rows could not be told from the chunks of document '",
                   std::string(DocumentOfRow(document_id)),
                   "'. Rename the document, or train with --chunk-stride 0 (truncation)"));
}

absl::StatusOr<Dataset> SplitDocuments(std::vector<TextDocument> docs, const std::string& name,
                                       Split split, const TextSplitOptions& options,
                                       int64_t* truncated) {
  const bool want_held_out = split == Split::kTest;
  std::vector<TextDocument> chosen;
  int64_t rows = 0;
  for (TextDocument& doc : docs) {
    if (options.limit > 0 && rows >= options.limit) break;
    if (IsHeldOut(doc.id, options.split_seed, options.held_out_fraction) == want_held_out) {
      rows += ChunkCount(static_cast<int64_t>(doc.text.size()) + 1, options.context_length,
                         options.chunk_stride);
      chosen.push_back(std::move(doc));
    }
  }
  ASSIGN_OR_RETURN(
      Dataset data,
      DocumentsToDataset(chosen, absl::StrCat(name, want_held_out ? "/held-out" : "/train"),
                         options.context_length, options.chunk_stride, truncated));
  if (options.limit > 0 && data.size() > options.limit) {
    const size_t keep = static_cast<size_t>(options.limit);
    data.tokens.resize(keep * static_cast<size_t>(options.context_length));
    data.targets.resize(keep * static_cast<size_t>(options.context_length));
    data.ids.resize(keep);
    data.sources.resize(keep);
    data.previews.resize(keep);
  }
  return data;
}

absl::StatusOr<Dataset> DocumentsToDataset(const std::vector<TextDocument>& docs,
                                           const std::string& name, int64_t context_length,
                                           int64_t chunk_stride, int64_t* truncated) {
  Dataset data;
  data.name = name;
  data.sequence_length = context_length;
  const size_t width = static_cast<size_t>(context_length);
  int64_t cut = 0;
  for (const TextDocument& doc : docs) {
    RETURN_IF_ERROR(CheckChunkableId(doc.id, chunk_stride));
    const std::vector<int32_t> tokens = EncodeBytes(doc.text);
    const int64_t n = static_cast<int64_t>(tokens.size());
    const std::vector<ChunkWindow> windows = ChunkWindows(n + 1, context_length, chunk_stride);
    const int64_t chunks = static_cast<int64_t>(windows.size());
    if (windows.back().end < n + 1) ++cut;
    for (int64_t k = 0; k < chunks; ++k) {
      const ChunkWindow& window = windows[k];
      const size_t at = data.tokens.size();
      data.tokens.resize(at + width);
      data.targets.resize(at + width);
      WriteChunkRow(tokens.data(), n, window, context_length, doc.prompt_bytes, kEndOfDocument,
                    &data.tokens[at], &data.targets[at]);
      data.ids.push_back(ChunkId(doc.id, k, chunks));
      data.sources.push_back(doc.source);
      data.previews.push_back(ChunkText(doc.text, window, chunks));
    }
  }
  if (truncated != nullptr) *truncated = cut;
  return data;
}

}  // namespace tda
