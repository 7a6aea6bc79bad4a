#include "data/dataset.h"

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

}  // namespace tda
