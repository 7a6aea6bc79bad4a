// What a corpus gives a consumer, batch by batch: N rows of one shape (sequences of
// `sequence_length` tokens, or feature vectors of `feature_dim`), read into caller-owned storage,
// and per-row metadata. Consumers that take a RowSource (factor fitting, the gradient pass, index
// builds) never need the whole corpus in memory: an in-memory Dataset serves it through DatasetRows
// (data/dataset_rows.h), a token cache through CachedTextRows (data/cached_text_rows.h), which
// builds rows on demand.
//
// Implementations are thread-compatible: const methods may be called from one thread at a time.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/batch.h"

namespace tda {

// Memory a Batch read from a RowSource views; reused across reads.
struct RowStorage {
  std::vector<int32_t> ints;  // tokens then targets (sequences), or labels (classification)
  std::vector<float> floats;  // features (classification)
};

class RowSource {
 public:
  virtual ~RowSource() = default;

  virtual const std::string& name() const = 0;  // e.g. "fortunes/train"
  virtual int64_t size() const = 0;
  virtual int64_t sequence_length() const = 0;  // 0 for classification
  virtual int64_t feature_dim() const = 0;      // 0 for sequences
  bool is_sequence() const { return sequence_length() > 0; }

  // The rows rows[0], ..., rows[count - 1] (each in [0, size())), in that order, as a batch viewing
  // `storage`: full sequence_length() positions per sequence row.
  virtual Batch Gather(const int64_t* rows, int64_t count, RowStorage* storage) const = 0;

  virtual std::string id(int64_t i) const = 0;
  virtual std::string source(int64_t i) const = 0;
  // Sequences: the row's document text ("" when the source keeps none); classification: "".
  virtual std::string preview(int64_t i) const = 0;
  virtual int32_t label(int64_t i) const = 0;  // class (classification); -1 for sequences
  // Positions of row i up to its last target (>= 1, see UsedPositions); 1 for classification.
  virtual int64_t used_positions(int64_t i) const = 0;
  virtual const std::vector<std::string>& class_names() const = 0;  // label -> name

  // Rows [begin, end) in order.
  Batch Read(int64_t begin, int64_t end, RowStorage* storage) const;
};

// Rows `rows` (count of them) as by Gather, sequences cut to the longest used_positions among them
// (the same rows as Dataset::RowsCut on the selected rows).
Batch GatherCut(const RowSource& source, const int64_t* rows, int64_t count, RowStorage* storage);

// Rows [begin, end) ordered by used_positions (stable): batches cut from this order hold documents
// of similar length, so a batch cut to its longest row is mostly not padding.
std::vector<int64_t> OrderByLength(const RowSource& source, int64_t begin, int64_t end);

}  // namespace tda
