#include "server/caller_quota.h"

#include "absl/strings/str_cat.h"

namespace tda {

absl::Status CallerQuota::Enter(const std::string& caller) {
  if (per_caller_ <= 0) return absl::OkStatus();
  absl::MutexLock lock(&mutex_);
  int64_t& count = in_flight_[caller];
  if (count >= per_caller_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("caller '", caller, "' already has ", count,
                     " queries in flight or queued (the limit per caller); retry later"));
  }
  ++count;
  return absl::OkStatus();
}

void CallerQuota::Leave(const std::string& caller) {
  if (per_caller_ <= 0) return;
  absl::MutexLock lock(&mutex_);
  auto it = in_flight_.find(caller);
  if (it != in_flight_.end() && --it->second <= 0) in_flight_.erase(it);
}

}  // namespace tda
