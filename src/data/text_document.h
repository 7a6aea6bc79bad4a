// A text document of a corpus, and what every text corpus kind (fortunes, jsonl) shares: the
// held-out split by id hash and the conversion of documents into byte-token rows.
//
// A document may be a prompt + completion pair (instruction data): then `text` is the prompt
// followed by the completion and only the completion's bytes carry loss, as in a query.
//
// Long documents: with chunk_stride 0 a document is one row, cut at the context (the rows of
// models trained before chunking). With chunk_stride > 0 a document longer than the context
// becomes several rows, the windows of data/chunking.h (ChunkWindows, WriteChunkRow), with ids
// "<document id>#<k>" (ChunkId), the document's source, and the text each window predicts as
// preview; a document that fits stays one row with its own id.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "data/dataset.h"
#include "data/fashion_mnist.h"

namespace tda {

struct TextDocument {
  std::string id;            // stable, unique within the corpus
  std::string source;        // the data source (fortunes: the category)
  std::string text;          // the whole document (prompt + completion for pairs)
  int64_t prompt_bytes = 0;  // leading bytes of `text` that carry no loss (0: all do)
};

// How a text corpus becomes a split of rows.
struct TextSplitOptions {
  int64_t context_length = 256;
  double held_out_fraction = 0.05;
  uint64_t split_seed = 0;
  // The first N rows of the split (in corpus order), as the trainer's train_size counts them:
  // a document's chunks past the N-th row are left out. 0 = all.
  int64_t limit = 0;
  // Long documents become windows this many tokens apart (data/chunking.h); 0 = cut at the
  // context.
  int64_t chunk_stride = 0;
};

// kInvalidArgument unless context_length > 0 and held_out_fraction is in [0, 1).
[[nodiscard]] absl::Status ValidateTextSplitOptions(const TextSplitOptions& options);

// Held out when XXH3(split_seed ":" id) falls in the lowest `held_out_fraction` of the hash
// range: membership depends on the id only, so it is stable when documents are added.
bool IsHeldOut(const std::string& id, uint64_t split_seed, double held_out_fraction);

// kInvalidArgument when chunking (chunk_stride > 0) and `document_id` ends like a chunk id
// ("#<digits>", LooksLikeChunkId): its rows could not be told from another document's chunks.
// The message names the id and says what to do.
[[nodiscard]] absl::Status CheckChunkableId(const std::string& document_id, int64_t chunk_stride);

// The documents of `split` (IsHeldOut by id) as a data set named "<name>/train" or
// "<name>/held-out": DocumentsToDataset, then the first `limit` rows.
[[nodiscard]] absl::StatusOr<Dataset> SplitDocuments(std::vector<TextDocument> docs,
                                                     const std::string& name, Split split,
                                                     const TextSplitOptions& options,
                                                     int64_t* truncated = nullptr);

// Documents as a sequence data set (rows of `context_length` positions), in the given order,
// one row per window of each document (chunk_stride 0: one row per document); targets of
// prompt bytes are kNoTarget. `truncated` (optional) receives how many documents were longer
// than the context and cut (only with chunk_stride 0). kInvalidArgument for a chunk-like id
// (CheckChunkableId).
[[nodiscard]] absl::StatusOr<Dataset> DocumentsToDataset(const std::vector<TextDocument>& docs,
                                                         const std::string& name,
                                                         int64_t context_length,
                                                         int64_t chunk_stride = 0,
                                                         int64_t* truncated = nullptr);

}  // namespace tda
