#include "server/query_slots.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace tda {

absl::Status QuerySlots::Acquire(const Cancellation& cancellation) {
  // A call that arrives already past its deadline (or cancelled) never takes a slot.
  if (absl::Status stop = cancellation.Check("query waiting for a slot"); !stop.ok()) return stop;
  absl::MutexLock lock(&mutex_);
  if (waiting_.empty() && running_ < slots_) {
    ++running_;
    return absl::OkStatus();
  }
  if (max_waiting_ > 0 && static_cast<int64_t>(waiting_.size()) >= max_waiting_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "server busy: ", waiting_.size(), " queries queued; retry later"));
  }
  const auto me = waiting_.insert(waiting_.end(), next_ticket_++);
  auto my_turn = [this, me]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    return waiting_.begin() == me && running_ < slots_;
  };
  while (true) {
    const absl::Time wake =
        std::min(cancellation.deadline(), absl::Now() + kCancelPollInterval);
    if (mutex_.AwaitWithDeadline(absl::Condition(&my_turn), wake)) break;
    absl::Status stop = cancellation.Check("query waiting for a slot");
    if (!stop.ok()) {
      // Leaving wakes the next waiter (absl re-evaluates conditions on unlock).
      waiting_.erase(me);
      return stop;
    }
  }
  waiting_.erase(me);
  ++running_;
  return absl::OkStatus();
}

void QuerySlots::Release() {
  absl::MutexLock lock(&mutex_);
  --running_;
}

int64_t QuerySlots::in_use() const {
  absl::MutexLock lock(&mutex_);
  return running_;
}

int64_t QuerySlots::waiting() const {
  absl::MutexLock lock(&mutex_);
  return static_cast<int64_t>(waiting_.size());
}

}  // namespace tda
