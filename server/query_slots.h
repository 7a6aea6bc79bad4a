// At most N callers inside at once, admitted in arrival order (a ticket queue), so that a burst
// of queries is served first come, first served instead of racing for a mutex.
//
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace tda {

class QuerySlots {
 public:
  explicit QuerySlots(int slots) : slots_(slots < 1 ? 1 : slots) {}

  // Holds a slot from construction (waiting for it) to destruction.
  class Hold {
   public:
    explicit Hold(QuerySlots* slots) : slots_(slots) { slots_->Acquire(); }
    ~Hold() { slots_->Release(); }
    Hold(const Hold&) = delete;
    Hold& operator=(const Hold&) = delete;

   private:
    QuerySlots* slots_;
  };

 private:
  void Acquire() {
    absl::MutexLock lock(&mutex_);
    const int64_t ticket = next_ticket_++;
    // Tickets are issued in order and `finished_` only grows, so at most slots_ callers have
    // tickets below finished_ + slots_ and have not finished.
    auto my_turn = [this, ticket]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
      return ticket < finished_ + slots_;
    };
    mutex_.Await(absl::Condition(&my_turn));
  }
  void Release() {
    absl::MutexLock lock(&mutex_);
    ++finished_;
  }

  const int64_t slots_;
  absl::Mutex mutex_;
  int64_t next_ticket_ ABSL_GUARDED_BY(mutex_) = 0;
  int64_t finished_ ABSL_GUARDED_BY(mutex_) = 0;
};

}  // namespace tda
