// Per-caller bound on concurrent queries: at most N calls of one caller (tda::CallerName)
// computing or queued at once, so that one caller cannot fill the whole queue. N = 0: no bound.
//
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace tda {

class CallerQuota {
 public:
  explicit CallerQuota(int per_caller) : per_caller_(per_caller) {}

  // Counts one more query of `caller`: OK (the caller must then Leave), or RESOURCE_EXHAUSTED
  // when `caller` already has per_caller queries in flight or queued.
  [[nodiscard]] absl::Status Enter(const std::string& caller);
  void Leave(const std::string& caller);

 private:
  const int64_t per_caller_;
  absl::Mutex mutex_;
  absl::flat_hash_map<std::string, int64_t> in_flight_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace tda
