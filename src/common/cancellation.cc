#include "common/cancellation.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace tda {

absl::Status Cancellation::Check(const char* what) const {
  if (deadline_ != absl::InfiniteFuture()) {
    const absl::Time now = absl::Now();
    if (now >= deadline_) {
      return absl::DeadlineExceededError(absl::StrCat(
          what, " stopped: its deadline passed ", absl::FormatDuration(now - deadline_), " ago"));
    }
  }
  if (cancelled_ != nullptr && cancelled_()) {
    return absl::CancelledError(absl::StrCat(what, " stopped: cancelled by the caller"));
  }
  return absl::OkStatus();
}

}  // namespace tda
