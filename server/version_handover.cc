#include "server/version_handover.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "attribution/attributor.h"
#include "index/gradient_index.h"
#include "index/row_dtype.h"

namespace tda {

void PrefaultRows(const GradientIndex& index) {
  const int64_t row_bytes = index.dim() * static_cast<int64_t>(RowDTypeBytes(index.dtype()));
  const int64_t step = std::max<int64_t>(1, 4096 / std::max<int64_t>(1, row_bytes));
  std::vector<float> row(static_cast<size_t>(index.dim()));
  for (int64_t r = 0; r < index.rows(); r += step) {
    if (!index.CopyRow(r, row.data())) return;
  }
}

void WarmSampleLookup(const Attributor& attributor) {
  if (attributor.model().config().is_sequence()) return;
  (void)attributor.GetSample("tda warm-up: no such sample");
}

void CloseWhenUnused(std::shared_ptr<const IndexVersion> version) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (version.use_count() > 1 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace tda
