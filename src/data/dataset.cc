#include "data/dataset.h"

#include <algorithm>

namespace tda {

Dataset Dataset::Select(const std::vector<int64_t>& rows) const {
  Dataset out;
  out.name = name;
  out.feature_dim = feature_dim;
  out.sequence_length = sequence_length;
  out.class_names = class_names;
  for (int64_t r : rows) {
    const size_t i = static_cast<size_t>(r);
    if (is_sequence()) {
      const auto at = tokens.begin() + r * sequence_length;
      out.tokens.insert(out.tokens.end(), at, at + sequence_length);
      const auto t = targets.begin() + r * sequence_length;
      out.targets.insert(out.targets.end(), t, t + sequence_length);
    } else {
      out.features.insert(out.features.end(), row(r), row(r) + feature_dim);
      out.labels.push_back(labels[i]);
    }
    if (i < previews.size()) out.previews.push_back(previews[i]);
    if (i < ids.size()) out.ids.push_back(ids[i]);
    if (i < sources.size()) out.sources.push_back(sources[i]);
  }
  return out;
}

Batch Dataset::RowsCut(int64_t begin, int64_t end, std::vector<int32_t>* storage) const {
  if (!is_sequence()) return Rows(begin, end);
  int64_t used = 1;
  for (int64_t i = begin; i < end; ++i) used = std::max(used, used_positions(i));
  const int64_t rows = end - begin;
  storage->resize(static_cast<size_t>(2 * rows * used));
  int32_t* cut_tokens = storage->data();
  int32_t* cut_targets = cut_tokens + rows * used;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t at = (begin + r) * sequence_length;
    std::copy_n(tokens.data() + at, used, cut_tokens + r * used);
    std::copy_n(targets.data() + at, used, cut_targets + r * used);
  }
  return Batch::Sequences(cut_tokens, cut_targets, rows, used);
}

}  // namespace tda
