// Cross-request batching of Attribute calls, in the manner of TensorFlow Serving's batching
// (max_batch_size, batch_timeout_micros): concurrent calls on the same index version (the same
// Attributor) whose options are identical -- everything but their queries, compared by the
// caller's `options_key` -- are coalesced into ONE Attributor::Attribute over their
// concatenated queries (one batch of query gradients, one scan of the index), and each caller
// gets back exactly the slice of results of its own queries, as if it had run alone: query ids
// of raw and text queries are renumbered within the caller's request ("raw:<n>", "text:<n>").
//
// Contract of Attribute:
//  - A batch opens with its first call and is ready once it holds max_batch_size queries or
//    `timeout` has passed since it opened, whichever first -- or, when the recent batches had
//    several callers, once it has as many callers as the most of the last kRecentBatches had
//    (a steady group of N concurrent clients then runs in batches of N without waiting out
//    the timeout; a lone caller, or the first burst after one, waits as before). It keeps
//    taking calls (up to max_batch_size queries) until a worker starts it. A started batch holds
//    one query slot (QuerySlots) while it computes. Batches start in the order they opened.
//  - A call whose queries alone reach max_batch_size, a call with an empty `options_key`, or
//    every call when batching is off (timeout zero), runs alone on its own thread, exactly as
//    without a batcher.
//  - A caller whose cancellation fires (deadline or client cancel) while waiting or while its
//    batch computes returns kDeadlineExceeded / kCancelled at once (a cancel within
//    QuerySlots::kCancelPollInterval); the other members are not affected. A batch's own
//    computation stops only when every member has given up. Members' cancellation checks are
//    only ever called from their own threads.
//  - When the combined call fails with anything but a cancellation (e.g. one caller's unknown
//    sample id), each member still waiting is rerun alone in the same slot and gets its own
//    status. When the slot cannot be had (queue full), every member gets that status.
//  - At most `max_waiting` calls wait in batches not yet started (0: no bound); beyond,
//    kResourceExhausted at once, as QuerySlots' queue answers.
//  - *batch_queries is set to the number of queries computed in the call that answered the
//    caller (its own count when it ran alone); 0 when nothing was computed for it.
//
// Thread-safety: Attribute may be called from any number of threads. The destructor stops the
// workers; REQUIRES: no Attribute call in progress.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "attribution/attributor.h"
#include "server/query_slots.h"

namespace tda {

struct BatchingOptions {
  int64_t max_batch_size = 32;                       // queries in one batch, >= 1
  absl::Duration timeout = absl::Microseconds(2000);  // longest wait for more; zero: batching off
  bool enabled() const { return timeout > absl::ZeroDuration(); }
};

class QueryBatcher {
 public:
  // `slots` must outlive the batcher; `workers` batches compute at once at most (the slot
  // count: more would only wait for a slot).
  QueryBatcher(QuerySlots* slots, int workers, int64_t max_waiting, const BatchingOptions& options);
  ~QueryBatcher();
  QueryBatcher(const QueryBatcher&) = delete;
  QueryBatcher& operator=(const QueryBatcher&) = delete;

  // `queries` (validated by the caller) with `options` on `attributor`; calls batch together
  // only when their `attributor` pointers and `options_key`s are equal. See the contract above.
  [[nodiscard]] absl::StatusOr<std::vector<QueryResult>> Attribute(
      std::shared_ptr<const Attributor> attributor, const std::string& options_key,
      const std::vector<Query>& queries, const AttributeOptions& options, int64_t* batch_queries);

  // True when a call of `query_count` queries would wait for others (batching on and fewer
  // than max_batch_size queries); callers may skip building an options key otherwise.
  bool WouldBatch(int64_t query_count) const;
  const BatchingOptions& options() const { return options_; }

 private:
  struct Member;
  struct Batch;

  // Joins an open batch (or opens one) and waits for its answer or the caller's cancellation.
  [[nodiscard]] absl::StatusOr<std::vector<QueryResult>> RunBatched(std::shared_ptr<const Attributor> attributor,
                                                      const std::string& options_key,
                                                      const std::vector<Query>& queries,
                                                      const AttributeOptions& options,
                                                      int64_t* batch_queries);
  void WorkerLoop();
  // The oldest batch once it is ready (nullptr when stopping).
  std::shared_ptr<Batch> TakeReadyBatch();
  bool WorkerShouldWake() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  bool StoppingOrOpen() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    return stopping_ || !open_.empty();
  }
  // Computes a started batch and answers its members.
  void RunBatch(Batch& batch);
  // The most callers of the last kRecentBatches started batches (0 before the first).
  int64_t ExpectedCallers() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  static constexpr size_t kRecentBatches = 16;

  QuerySlots* const slots_;
  const int64_t max_waiting_;
  const BatchingOptions options_;
  absl::Mutex mutex_;
  std::deque<std::shared_ptr<Batch>> open_ ABSL_GUARDED_BY(mutex_);  // not started, oldest first
  int64_t waiting_calls_ ABSL_GUARDED_BY(mutex_) = 0;  // members of open_ still waiting
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  std::deque<int64_t> recent_callers_ ABSL_GUARDED_BY(mutex_);  // of started batches, newest last
  std::vector<std::thread> workers_;
};

}  // namespace tda
