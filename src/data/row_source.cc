#include "data/row_source.h"

#include <algorithm>
#include <numeric>

namespace tda {

Batch RowSource::Read(int64_t begin, int64_t end, RowStorage* storage) const {
  std::vector<int64_t> rows(static_cast<size_t>(end - begin));
  std::iota(rows.begin(), rows.end(), begin);
  return Gather(rows.data(), end - begin, storage);
}

Batch GatherCut(const RowSource& source, const int64_t* rows, int64_t count, RowStorage* storage) {
  const Batch full = source.Gather(rows, count, storage);
  if (!full.is_sequence()) return full;
  int64_t used = 1;
  for (int64_t r = 0; r < count; ++r) used = std::max(used, source.used_positions(rows[r]));
  const int64_t length = full.length;
  // Compact in place: row r's first `used` tokens, then the targets; every destination lies at or
  // before its source, so copying forward is safe.
  int32_t* data = storage->ints.data();
  for (int64_t r = 0; r < count; ++r) {
    std::copy_n(data + r * length, used, data + r * used);
  }
  int32_t* targets = data + count * used;
  for (int64_t r = 0; r < count; ++r) {
    std::copy_n(data + (count + r) * length, used, targets + r * used);
  }
  return Batch::Sequences(data, targets, count, used);
}

std::vector<int64_t> OrderByLength(const RowSource& source, int64_t begin, int64_t end) {
  std::vector<int64_t> order(static_cast<size_t>(end - begin));
  std::iota(order.begin(), order.end(), begin);
  std::vector<int64_t> length(order.size());
  for (size_t k = 0; k < order.size(); ++k) length[k] = source.used_positions(order[k]);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return length[static_cast<size_t>(a - begin)] < length[static_cast<size_t>(b - begin)];
  });
  return order;
}

}  // namespace tda
