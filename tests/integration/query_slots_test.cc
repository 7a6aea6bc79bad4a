// QuerySlots (arrival order, the queue bound, waiters that give up on a deadline or a
// cancellation without taking a slot) and CallerQuota, with real threads.
#include "server/query_slots.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "server/caller_quota.h"

namespace tda {
namespace {

using ::testing::HasSubstr;

const Cancellation kNever;

Cancellation After(absl::Duration timeout) { return Cancellation(absl::Now() + timeout, {}); }

// A thread that acquires a slot, records that it holds it, and releases it when told.
class Waiter {
 public:
  Waiter(QuerySlots* slots, Cancellation cancellation = {})
      : cancellation_(std::move(cancellation)),
        thread_([this, slots] {
          status_ = slots->Acquire(cancellation_);
          done_waiting_ = true;
          if (!status_.ok()) return;
          holds_ = true;
          while (!release_) std::this_thread::sleep_for(std::chrono::milliseconds(1));
          holds_ = false;
          slots->Release();
        }) {}
  ~Waiter() {
    release_ = true;
    thread_.join();
  }
  bool holds() const { return holds_; }
  bool done_waiting() const { return done_waiting_; }
  const absl::Status& status() const { return status_; }  // once done_waiting()
  void Release() { release_ = true; }
  // Polls `predicate` for up to two seconds.
  template <typename Predicate>
  static bool Eventually(Predicate predicate) {
    for (int i = 0; i < 2000; ++i) {
      if (predicate()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return predicate();
  }

 private:
  const Cancellation cancellation_;
  std::atomic<bool> holds_{false}, done_waiting_{false}, release_{false};
  absl::Status status_;
  std::thread thread_;
};

void Settle() { std::this_thread::sleep_for(std::chrono::milliseconds(30)); }

TEST(QuerySlots, AdmitsInArrivalOrder) {
  QuerySlots slots(1, 0);
  ASSERT_TRUE(slots.Acquire(kNever).ok());
  std::vector<std::unique_ptr<Waiter>> waiters;
  for (int i = 0; i < 3; ++i) {
    waiters.push_back(std::make_unique<Waiter>(&slots));
    Settle();  // queued before the next one arrives
  }
  slots.Release();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(Waiter::Eventually([&] { return waiters[i]->holds(); })) << "waiter " << i;
    for (int j = i + 1; j < 3; ++j) EXPECT_FALSE(waiters[j]->done_waiting()) << j << " before " << i;
    waiters[i]->Release();
  }
}

TEST(QuerySlots, WaiterWhoseDeadlinePassesGivesUpWithoutASlot) {
  QuerySlots slots(1, 0);
  ASSERT_TRUE(slots.Acquire(kNever).ok());
  Waiter first(&slots);
  Settle();
  const absl::Time start = absl::Now();
  Waiter expiring(&slots, After(absl::Milliseconds(50)));
  Settle();
  Waiter last(&slots);
  ASSERT_TRUE(Waiter::Eventually([&] { return expiring.done_waiting(); }));
  EXPECT_EQ(expiring.status().code(), absl::StatusCode::kDeadlineExceeded) << expiring.status();
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(500));
  EXPECT_FALSE(expiring.holds());
  // The slot is still ours: nobody was admitted when the expired waiter left.
  Settle();
  EXPECT_FALSE(first.done_waiting());
  EXPECT_FALSE(last.done_waiting());
  slots.Release();
  ASSERT_TRUE(Waiter::Eventually([&] { return first.holds(); }));
  Settle();
  EXPECT_FALSE(last.done_waiting()) << "one slot, held by `first`";
  first.Release();
  EXPECT_TRUE(Waiter::Eventually([&] { return last.holds(); }));
}

TEST(QuerySlots, CancelledWaiterGivesUpPromptly) {
  QuerySlots slots(1, 0);
  ASSERT_TRUE(slots.Acquire(kNever).ok());
  std::atomic<bool> cancelled{false};
  Waiter waiter(&slots, Cancellation(absl::InfiniteFuture(), [&] { return cancelled.load(); }));
  Settle();
  EXPECT_FALSE(waiter.done_waiting());
  const absl::Time start = absl::Now();
  cancelled = true;
  ASSERT_TRUE(Waiter::Eventually([&] { return waiter.done_waiting(); }));
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(200));
  EXPECT_EQ(waiter.status().code(), absl::StatusCode::kCancelled) << waiter.status();
  slots.Release();
  Waiter next(&slots);
  EXPECT_TRUE(Waiter::Eventually([&] { return next.holds(); }));
}

TEST(QuerySlots, RefusesBeyondTheQueueBound) {
  QuerySlots slots(1, 1);
  ASSERT_TRUE(slots.Acquire(kNever).ok());
  Waiter queued(&slots);
  Settle();
  EXPECT_THAT(std::string(slots.Acquire(kNever).message()),
              HasSubstr("server busy: 1 queries queued; retry later"));
  EXPECT_EQ(slots.Acquire(kNever).code(), absl::StatusCode::kResourceExhausted);
  slots.Release();
  ASSERT_TRUE(Waiter::Eventually([&] { return queued.holds(); }));
  // Nobody waits now: the next caller is queued, not refused.
  Waiter again(&slots, After(absl::Milliseconds(30)));
  ASSERT_TRUE(Waiter::Eventually([&] { return again.done_waiting(); }));
  EXPECT_EQ(again.status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST(QuerySlots, CallPastItsDeadlineOnArrivalTakesNoFreeSlot) {
  QuerySlots slots(1, 0);
  EXPECT_EQ(slots.Acquire(After(-absl::Milliseconds(1))).code(),
            absl::StatusCode::kDeadlineExceeded);
  Waiter next(&slots);  // the slot is still free
  EXPECT_TRUE(Waiter::Eventually([&] { return next.holds(); }));
}

TEST(QuerySlots, TwoSlotsAdmitTwoAtOnce) {
  QuerySlots slots(2, 0);
  Waiter a(&slots), b(&slots);
  ASSERT_TRUE(Waiter::Eventually([&] { return a.holds() && b.holds(); }));
  Waiter c(&slots);
  Settle();
  EXPECT_FALSE(c.done_waiting());
  a.Release();
  EXPECT_TRUE(Waiter::Eventually([&] { return c.holds(); }));
}

TEST(CallerQuota, BoundsEachCallerSeparately) {
  CallerQuota quota(2);
  ASSERT_TRUE(quota.Enter("alice").ok());
  ASSERT_TRUE(quota.Enter("alice").ok());
  const absl::Status refused = quota.Enter("alice");
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(refused.message()), HasSubstr("caller 'alice' already has 2"));
  EXPECT_TRUE(quota.Enter("bob").ok());
  quota.Leave("alice");
  EXPECT_TRUE(quota.Enter("alice").ok());

  CallerQuota unbounded(0);
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(unbounded.Enter("anonymous").ok());
}

}  // namespace
}  // namespace tda
