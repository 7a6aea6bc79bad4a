// At most N queries compute at once, admitted in arrival order (a FIFO of waiters), so that a
// burst of queries is served first come, first served instead of racing for a mutex; at most
// `max_waiting` wait for a slot (0: no bound), so a flood is refused at once rather than queued
// without end. A waiter whose deadline passes or whose caller cancels gives up without ever
// taking a slot, and the waiters behind it move up in order.
//
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <cstdint>
#include <list>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/cancellation.h"

namespace tda {

class QuerySlots {
 public:
  QuerySlots(int slots, int max_waiting) : slots_(slots < 1 ? 1 : slots), max_waiting_(max_waiting) {}

  // Waits for a slot. OK: the caller holds one and must Release it. RESOURCE_EXHAUSTED at once
  // when max_waiting callers already wait ("server busy"); kDeadlineExceeded / kCancelled when
  // `cancellation` fires while waiting (the deadline is seen at once, a cancellation within
  // kCancelPollInterval), or has already fired on arrival -- then no slot is taken.
  [[nodiscard]] absl::Status Acquire(const Cancellation& cancellation);
  void Release();

  // Now (metrics): slots held, and callers waiting for one.
  int64_t in_use() const;
  int64_t waiting() const;

  // How often a waiter polls its cancellation check (deadlines wake it exactly).
  static constexpr absl::Duration kCancelPollInterval = absl::Milliseconds(5);

 private:
  const int64_t slots_;
  const int64_t max_waiting_;
  mutable absl::Mutex mutex_;
  int64_t running_ ABSL_GUARDED_BY(mutex_) = 0;
  std::list<int64_t> waiting_ ABSL_GUARDED_BY(mutex_);  // tickets, in arrival order
  int64_t next_ticket_ ABSL_GUARDED_BY(mutex_) = 0;
};

}  // namespace tda
