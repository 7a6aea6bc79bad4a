#include "data/cached_text_rows.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "data/chunking.h"
#include "data/token_rows.h"

namespace tda {

CachedTextRows::CachedTextRows(std::shared_ptr<const TokenCache> cache, const std::string& name,
                               Split split, const TextSplitOptions& options)
    : cache_(std::move(cache)),
      name_(absl::StrCat(name, split == Split::kTest ? "/held-out" : "/train")),
      context_(options.context_length),
      stride_(options.chunk_stride) {}

absl::StatusOr<std::unique_ptr<CachedTextRows>> CachedTextRows::Open(
    std::shared_ptr<const TokenCache> cache, const std::string& name, Split split,
    const TextSplitOptions& options) {
  ASSIGN_OR_RETURN(const DocumentMarkers markers, DocumentMarkersOf(cache->tokenizer()));
  auto out =
      std::unique_ptr<CachedTextRows>(new CachedTextRows(std::move(cache), name, split, options));
  out->markers_ = markers;
  const TokenCache& c = *out->cache_;
  const bool want_held_out = split == Split::kTest;
  const int64_t limit = options.limit;
  std::vector<Row>& rows = out->rows_;
  for (int64_t doc = 0; doc < c.documents(); ++doc) {
    if (limit > 0 && static_cast<int64_t>(rows.size()) >= limit) break;
    const std::string id(c.id(doc));
    if (IsHeldOut(id, options.split_seed, options.held_out_fraction) != want_held_out) continue;
    RETURN_IF_ERROR(CheckChunkableId(id, out->stride_));
    const int64_t positions = c.document_tokens(doc) + 1;
    if (out->stride_ == 0 && positions > out->context_) ++out->truncated_;
    const auto windows =
        static_cast<int32_t>(ChunkCount(positions, out->context_, out->stride_));
    for (int32_t k = 0; k < windows; ++k) rows.push_back({doc, k, windows});
  }
  // `limit` counts rows, as SplitDocuments does: the last document may keep only its first chunks.
  if (limit > 0 && static_cast<int64_t>(rows.size()) > limit)
    rows.resize(static_cast<size_t>(limit));
  rows.shrink_to_fit();
  return out;
}

ChunkWindow CachedTextRows::WindowOf(const Row& row) const {
  const int64_t positions = cache_->document_tokens(row.doc) + 1;
  return ChunkWindowAt(positions, context_, stride_, row.window);
}

Batch CachedTextRows::Gather(const int64_t* rows, int64_t count, RowStorage* storage) const {
  storage->ints.resize(static_cast<size_t>(2 * count * context_));
  int32_t* tokens = storage->ints.data();
  int32_t* targets = tokens + count * context_;
  for (int64_t r = 0; r < count; ++r) {
    const Row& row = rows_[static_cast<size_t>(rows[r])];
    const int64_t n = cache_->document_tokens(row.doc);
    document_.resize(static_cast<size_t>(n));
    cache_->CopyTokens(row.doc, document_.data());
    WriteChunkRow(document_.data(), n, WindowOf(row), context_, cache_->prompt_tokens(row.doc),
                  markers_, tokens + r * context_, targets + r * context_);
  }
  return Batch::Sequences(tokens, targets, count, context_);
}

std::string CachedTextRows::id(int64_t i) const {
  const Row& row = rows_[static_cast<size_t>(i)];
  return ChunkId(cache_->id(row.doc), row.window, row.windows);
}

std::string CachedTextRows::source(int64_t i) const {
  return std::string(cache_->source(rows_[static_cast<size_t>(i)].doc));
}

std::string CachedTextRows::preview(int64_t i) const {
  // The tokens the row predicts (position r: token window.begin + r), decoded; the whole text
  // of a one-window document.
  const Row& row = rows_[static_cast<size_t>(i)];
  if (row.windows <= 1) return cache_->Text(row.doc);
  const ChunkWindow window = WindowOf(row);
  return cache_->DecodeRange(row.doc, window.begin, window.end);
}

int64_t CachedTextRows::used_positions(int64_t i) const {
  // The row's targets are set on [max(loss_begin, prompt), end) (WriteChunkRow), counted from the
  // window's first position.
  const Row& row = rows_[static_cast<size_t>(i)];
  const ChunkWindow window = WindowOf(row);
  const int64_t first_loss = std::max(window.loss_begin, cache_->prompt_tokens(row.doc));
  return first_loss < window.end ? window.end - window.begin : 1;
}

}  // namespace tda
