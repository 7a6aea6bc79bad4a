// A batch of model inputs as a torch-free view (no ownership; the caller keeps the memory
// alive). Two shapes:
//   classification: `features` (rows x input_dim floats) and `labels` (one class per row);
//   sequences:      `tokens` (rows x length ids) and `targets` (rows x length next-token ids,
//                   -1 = no loss at this position, e.g. padding or a query's prompt).
// Predict needs only the inputs; Capture and curvature products also need labels/targets.
#pragma once

#include <cstdint>

namespace tda {

// Positions of one sequence row up to its last target >= 0 (its length without padding), at
// least 1; `targets` holds the row's `length` next-token ids.
inline int64_t UsedPositions(const int32_t* targets, int64_t length) {
  for (int64_t t = length; t > 0; --t) {
    if (targets[t - 1] >= 0) return t;
  }
  return 1;
}

struct Batch {
  int64_t rows = 0;
  const float* features = nullptr;
  const int32_t* labels = nullptr;
  int64_t length = 0;
  const int32_t* tokens = nullptr;
  const int32_t* targets = nullptr;

  static Batch Classification(const float* features, const int32_t* labels, int64_t rows) {
    Batch b;
    b.rows = rows;
    b.features = features;
    b.labels = labels;
    return b;
  }
  static Batch Sequences(const int32_t* tokens, const int32_t* targets, int64_t rows,
                         int64_t length) {
    Batch b;
    b.rows = rows;
    b.length = length;
    b.tokens = tokens;
    b.targets = targets;
    return b;
  }

  bool is_sequence() const { return tokens != nullptr; }
  // Positions per row: `length` for sequences, 1 for classification.
  int64_t positions() const { return is_sequence() ? length : 1; }
  // Sequences: positions of row r up to its last target (see UsedPositions); 1 otherwise.
  int64_t used_positions(int64_t r) const {
    return is_sequence() ? UsedPositions(targets + r * length, length) : 1;
  }
  // What the loss is measured against, rows x positions(): labels or targets.
  const int32_t* outputs() const { return is_sequence() ? targets : labels; }
  // The same inputs measured against other labels/targets (rows x positions() of them).
  Batch WithOutputs(const int32_t* outputs) const {
    Batch b = *this;
    (is_sequence() ? b.targets : b.labels) = outputs;
    return b;
  }
};

}  // namespace tda
