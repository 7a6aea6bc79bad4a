// The collective operations a data-parallel build needs, over the ranks of one job. A build
// given no Collective is a single process (rank 0 of 1). world.h joins a real one (LibTorch's
// c10d Gloo process group, torchrun-style environment).
//
// Every rank must call the same operations in the same order. A rank that fails or exits makes
// the others' next operation fail with kUnavailable (naming the operation), never hang past the
// group's timeout.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace tda {

class Collective {
 public:
  virtual ~Collective() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;

  // values[i] = the sum over ranks of values[i]; every rank receives the same bits.
  [[nodiscard]] virtual absl::Status AllReduceSum(double* values, int64_t count) = 0;
  // Every rank's `mine`, by rank.
  [[nodiscard]] virtual absl::StatusOr<std::vector<std::string>> AllGather(
      const std::string& mine) = 0;
};

// The contiguous slice [begin, end) of `units` work units that `rank` of `size` takes: the
// ranks' slices tile [0, units) in rank order and differ in length by at most one.
inline std::pair<int64_t, int64_t> RankSlice(int64_t units, int rank, int size) {
  return {units * rank / size, units * (rank + 1) / size};
}

}  // namespace tda
