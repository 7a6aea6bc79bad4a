// The rows of a split of a token-cached corpus (data/token_cache.h), built on demand from the
// mapped tokens: the same rows, bit for bit, as DocumentsToDataset on the same documents, split and
// options (data/text_document.h) for the byte tokenizer, with long documents cut into windows as
// data/chunking.h says (one row per window; chunk_stride 0: one window cut at the context). Rows
// of another tokenizer's cache start with its BOS and end with its EOS (DocumentMarkersOf).
//
// Memory: the cache is mapped, not loaded; a per-row table (document index and window, 16 bytes a
// row) is the only thing held per row. Thread-compatible.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "data/chunking.h"
#include "data/fashion_mnist.h"
#include "data/row_source.h"
#include "data/text_document.h"
#include "data/token_cache.h"

namespace tda {

class CachedTextRows : public RowSource {
 public:
  // The rows of the documents of `split` (IsHeldOut by id; the first options.limit rows, in
  // corpus order), named "<name>/train" or "<name>/held-out". Options must be valid
  // (ValidateTextSplitOptions). kInvalidArgument for a document id that ends like a chunk id
  // when chunking (CheckChunkableId).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<CachedTextRows>> Open(
      std::shared_ptr<const TokenCache> cache, const std::string& name, Split split,
      const TextSplitOptions& options);

  const std::string& name() const override { return name_; }
  int64_t size() const override { return static_cast<int64_t>(rows_.size()); }
  int64_t sequence_length() const override { return context_; }
  int64_t feature_dim() const override { return 0; }
  Batch Gather(const int64_t* rows, int64_t count, RowStorage* storage) const override;
  std::string id(int64_t i) const override;
  std::string source(int64_t i) const override;
  std::string preview(int64_t i) const override;  // the chunk's text (ChunkText)
  int32_t label(int64_t) const override { return -1; }
  int64_t used_positions(int64_t i) const override;
  const std::vector<std::string>& class_names() const override { return no_classes_; }

  // Documents longer than the context and cut (chunk_stride 0).
  int64_t truncated() const { return truncated_; }
  // Bytes of the per-row table held in memory.
  int64_t row_table_bytes() const { return static_cast<int64_t>(rows_.capacity() * sizeof(Row)); }
  const TokenCache& cache() const { return *cache_; }

 private:
  CachedTextRows(std::shared_ptr<const TokenCache> cache, const std::string& name, Split split,
                 const TextSplitOptions& options);
  struct Row {
    int64_t doc = 0;
    int32_t window = 0;
    int32_t windows = 1;
  };
  ChunkWindow WindowOf(const Row& row) const;

  std::shared_ptr<const TokenCache> cache_;
  std::string name_;
  int64_t context_ = 0;
  int64_t stride_ = 0;
  std::vector<Row> rows_;
  int64_t truncated_ = 0;
  std::vector<std::string> no_classes_;
  DocumentMarkers markers_ = DocumentMarkers(0);  // of the cache's tokenizer
  mutable std::vector<int32_t> document_;  // scratch: one document's tokens
};

}  // namespace tda
