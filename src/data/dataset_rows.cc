#include "data/dataset_rows.h"

#include <algorithm>
#include <utility>

namespace tda {

Batch DatasetRows::Gather(const int64_t* rows, int64_t count, RowStorage* storage) const {
  if (data_.is_sequence()) {
    const int64_t length = data_.sequence_length;
    storage->ints.resize(static_cast<size_t>(2 * count * length));
    int32_t* tokens = storage->ints.data();
    int32_t* targets = tokens + count * length;
    for (int64_t r = 0; r < count; ++r) {
      std::copy_n(data_.tokens.data() + rows[r] * length, length, tokens + r * length);
      std::copy_n(data_.targets.data() + rows[r] * length, length, targets + r * length);
    }
    return Batch::Sequences(tokens, targets, count, length);
  }
  const int64_t dim = data_.feature_dim;
  storage->floats.resize(static_cast<size_t>(count * dim));
  storage->ints.resize(static_cast<size_t>(count));
  for (int64_t r = 0; r < count; ++r) {
    std::copy_n(data_.row(rows[r]), dim, storage->floats.data() + r * dim);
    storage->ints[static_cast<size_t>(r)] = data_.labels[static_cast<size_t>(rows[r])];
  }
  return Batch::Classification(storage->floats.data(), storage->ints.data(), count);
}

namespace {

struct DatasetHolder {
  Dataset held;
};

class OwnedDatasetRows : private DatasetHolder, public DatasetRows {
 public:
  explicit OwnedDatasetRows(Dataset data)
      : DatasetHolder{std::move(data)}, DatasetRows(DatasetHolder::held) {}
};

}  // namespace

std::unique_ptr<RowSource> OwnDatasetRows(Dataset data) {
  return std::make_unique<OwnedDatasetRows>(std::move(data));
}

Dataset MaterializeRows(const RowSource& source) {
  Dataset data;
  data.name = source.name();
  data.sequence_length = source.sequence_length();
  data.feature_dim = source.feature_dim();
  data.class_names = source.class_names();
  const int64_t n = source.size();
  constexpr int64_t kBlock = 1024;
  RowStorage storage;
  for (int64_t begin = 0; begin < n; begin += kBlock) {
    const int64_t end = std::min(n, begin + kBlock);
    const Batch batch = source.Read(begin, end, &storage);
    const int64_t rows = end - begin;
    if (batch.is_sequence()) {
      data.tokens.insert(data.tokens.end(), batch.tokens, batch.tokens + rows * batch.length);
      data.targets.insert(data.targets.end(), batch.targets, batch.targets + rows * batch.length);
    } else {
      data.features.insert(data.features.end(), batch.features,
                           batch.features + rows * data.feature_dim);
      data.labels.insert(data.labels.end(), batch.labels, batch.labels + rows);
    }
    for (int64_t i = begin; i < end; ++i) {
      data.ids.push_back(source.id(i));
      data.sources.push_back(source.source(i));
      if (batch.is_sequence()) data.previews.push_back(source.preview(i));
    }
  }
  return data;
}

}  // namespace tda
