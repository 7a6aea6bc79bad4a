// A data set as tda sees it: N samples, each with a stable id and a data source, of one of two
// shapes:
//   classification: a class label and a dense feature vector per sample (Fashion-MNIST);
//   sequences:      `sequence_length` input tokens and next-token targets per sample (text;
//                   targets -1 where there is no loss, e.g. padding), with a text preview.
// Torch-free; models convert rows to tensors themselves.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/batch.h"

namespace tda {

// The two splits of every corpus: the samples a model trains on, and the ones held out.
enum class Split { kTrain, kTest };

struct Dataset {
  std::string name;                      // e.g. "fashion-mnist/train"
  int64_t feature_dim = 0;               // 784 for Fashion-MNIST; 0 for sequences
  std::vector<float> features;           // size() x feature_dim, row-major
  std::vector<int32_t> labels;           // class index per sample (classification)
  int64_t sequence_length = 0;           // tokens per sample (sequences); 0 for classification
  std::vector<int32_t> tokens;           // size() x sequence_length input ids
  std::vector<int32_t> targets;          // size() x sequence_length next-token ids, -1 = no loss
  std::vector<std::string> previews;     // per sample: its text (sequences), may be empty
  std::vector<std::string> ids;          // stable id per sample, e.g. "fashion-mnist/train/17"
  std::vector<std::string> sources;      // data source per sample
  std::vector<std::string> class_names;  // label -> human name

  bool is_sequence() const { return sequence_length > 0; }
  int64_t size() const {
    return is_sequence() ? static_cast<int64_t>(tokens.size()) / sequence_length
                         : static_cast<int64_t>(labels.size());
  }
  const float* row(int64_t i) const { return features.data() + i * feature_dim; }
  // Samples [begin, end) as a model batch viewing this data set's memory.
  Batch Rows(int64_t begin, int64_t end) const {
    if (is_sequence()) {
      const int64_t at = begin * sequence_length;
      return Batch::Sequences(tokens.data() + at, targets.data() + at, end - begin, sequence_length);
    }
    return Batch::Classification(row(begin), labels.data() + begin, end - begin);
  }
  // Samples [begin, end) cut to the longest used_positions among them: sequences are copied
  // into `storage` (tokens, then targets) so that the batch's length is that; classification
  // rows are viewed as by Rows.
  Batch RowsCut(int64_t begin, int64_t end, std::vector<int32_t>* storage) const;
  // A copy holding the given samples, in the given order.
  Dataset Select(const std::vector<int64_t>& rows) const;
  // Sequences: positions of sample i up to its last target (its length without padding, >= 1);
  // 1 for classification.
  int64_t used_positions(int64_t i) const {
    return is_sequence()
               ? UsedPositions(targets.data() + i * sequence_length, sequence_length)
               : 1;
  }
};

}  // namespace tda
