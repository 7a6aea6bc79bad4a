// A batch of model inputs as a torch-free view (no ownership; the caller keeps the memory
// alive). Two shapes:
//   classification: `features` (rows x input_dim floats) and `labels` (one class per row);
//   sequences:      `tokens` (rows x length ids) and `targets` (rows x length next-token ids,
//                   -1 = no loss at this position, e.g. padding or a query's prompt).
// Predict needs only the inputs; Capture and curvature products also need labels/targets.
#pragma once

#include <cstdint>

namespace tda {

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
