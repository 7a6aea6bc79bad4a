// QueryBatcher in process, with real threads and a real small Fashion-MNIST index: the test
// holds the only query slot, so a batch has started (a worker took it) but cannot compute yet.
// What is proven: members of a started batch that cancel or pass their deadline return at once
// while the batch goes on and answers the member that stayed (its batch_queries counting every
// member it started with, its results those of the same call alone); a batch every member has
// left gives up its wait for the slot without taking it; once batches have had N callers, a
// batch runs as soon as N have joined instead of waiting out the timeout.
#include "server/query_batcher.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <thread>

#include "absl/time/clock.h"
#include "team_server.h"
#include "test_support.h"

namespace tda {
namespace {

using ::tda::testing::StatusIs;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

// One QueryBatcher::Attribute on its own thread.
class BatchedCall {
 public:
  BatchedCall(QueryBatcher* batcher, std::shared_ptr<const Attributor> attributor,
              const std::string& id, Cancellation cancellation)
      : thread_([=] {
          AttributeOptions options;
          options.top_k = 5;
          options.cancellation = cancellation;
          result_ = batcher->Attribute(attributor, "same options", {Query{id, {}, -1, {}}}, options,
                                       &batch_queries_);
          ms_ = std::chrono::duration<double, std::milli>(Clock::now() - start_).count();
        }) {}
  ~BatchedCall() { Join(); }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }
  const absl::StatusOr<std::vector<QueryResult>>& result() { return Join(), *result_; }
  int64_t batch_queries() { return Join(), batch_queries_; }
  double ms() { return Join(), ms_; }

 private:
  const Clock::time_point start_ = Clock::now();
  std::optional<absl::StatusOr<std::vector<QueryResult>>> result_;
  int64_t batch_queries_ = -1;
  double ms_ = 0;
  std::thread thread_;
};

class QueryBatcherTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    absl::StatusOr<std::string> index = testing::BuildSmallIndex(dir_->path());
    ASSERT_TRUE(index.ok()) << index.status();
    absl::StatusOr<std::unique_ptr<Attributor>> opened = Attributor::Open(*index);
    ASSERT_TRUE(opened.ok()) << opened.status();
    attributor_ = new std::shared_ptr<const Attributor>(std::move(*opened));
  }
  static void TearDownTestSuite() {
    delete attributor_;
    delete dir_;
  }

  static testing::TempDir* dir_;
  static std::shared_ptr<const Attributor>* attributor_;
  QuerySlots slots_{1, 1};  // one slot, one waiter at most: an abandoned waiter would show
  QueryBatcher batcher_{&slots_, 1, 0, BatchingOptions{8, absl::Milliseconds(100)}};
};

testing::TempDir* QueryBatcherTest::dir_ = nullptr;
std::shared_ptr<const Attributor>* QueryBatcherTest::attributor_ = nullptr;

TEST_F(QueryBatcherTest, MembersOfAStartedBatchLeaveAtOnceAndTheOneWhoStaysIsAnswered) {
  ASSERT_NE(attributor_, nullptr);
  AttributeOptions alone_options;
  alone_options.top_k = 5;
  absl::StatusOr<std::vector<QueryResult>> alone =
      (*attributor_)->Attribute({Query{"fashion-mnist/test/0", {}, -1, {}}}, alone_options);
  TDA_ASSERT_OK(alone);

  TDA_ASSERT_OK(slots_.Acquire(Cancellation()));  // the batch will wait for this slot
  std::atomic<bool> cancel{false};
  BatchedCall stays(&batcher_, *attributor_, "fashion-mnist/test/0", Cancellation());
  BatchedCall cancels(&batcher_, *attributor_, "fashion-mnist/test/1",
                      Cancellation(absl::InfiniteFuture(), [&cancel] { return cancel.load(); }));
  BatchedCall times_out(&batcher_, *attributor_, "fashion-mnist/test/2",
                        Cancellation(absl::Now() + absl::Milliseconds(500), {}));
  std::this_thread::sleep_for(std::chrono::milliseconds(250));  // the batch has started
  const Clock::time_point cancelled_at = Clock::now();
  cancel = true;
  EXPECT_THAT(cancels.result(),
              StatusIs(absl::StatusCode::kCancelled, HasSubstr("query computing in a batch")));
  const double to_cancelled =
      std::chrono::duration<double, std::milli>(Clock::now() - cancelled_at).count();
  EXPECT_LT(to_cancelled, 100);
  EXPECT_THAT(times_out.result(), StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("")));
  EXPECT_LT(times_out.ms(), 600);
  slots_.Release();

  TDA_ASSERT_OK(stays.result());
  EXPECT_EQ(stays.batch_queries(), 3);  // started with all three
  ASSERT_EQ(stays.result()->size(), 1u);
  const QueryResult& batched = stays.result()->front();
  EXPECT_EQ(batched.query_id, "fashion-mnist/test/0");
  ASSERT_EQ(batched.proponents.size(), alone->front().proponents.size());
  for (size_t h = 0; h < batched.proponents.size(); ++h) {
    EXPECT_EQ(batched.proponents[h].id, alone->front().proponents[h].id);
    EXPECT_NEAR(batched.proponents[h].score, alone->front().proponents[h].score,
                1e-5 * std::max(1.0, std::abs(alone->front().proponents[h].score)));
  }
}

TEST_F(QueryBatcherTest, ABatchEveryMemberLeftNeverTakesTheSlot) {
  ASSERT_NE(attributor_, nullptr);
  TDA_ASSERT_OK(slots_.Acquire(Cancellation()));
  BatchedCall leaves(&batcher_, *attributor_, "fashion-mnist/test/3",
                     Cancellation(absl::Now() + absl::Milliseconds(100), {}));
  EXPECT_THAT(leaves.result(), StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("")));
  // The abandoned batch (started at 100 ms, waiting for the slot) gives up its place in the
  // slot queue: a waiter now is queued (and times out) instead of being refused as the second.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_THAT(slots_.Acquire(Cancellation(absl::Now() + absl::Milliseconds(20), {})),
              StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("")));
  slots_.Release();
  BatchedCall next(&batcher_, *attributor_, "fashion-mnist/test/4", Cancellation());
  TDA_ASSERT_OK(next.result());
  EXPECT_EQ(next.batch_queries(), 1);
}

TEST_F(QueryBatcherTest, ABatchRunsOnceItHasAsManyCallersAsRecentBatches) {
  ASSERT_NE(attributor_, nullptr);
  QueryBatcher batcher(&slots_, 1, 0, BatchingOptions{8, absl::Seconds(1)});
  auto round = [&](int callers) {
    std::vector<std::unique_ptr<BatchedCall>> calls;
    for (int c = 0; c < callers; ++c) {
      calls.push_back(std::make_unique<BatchedCall>(
          &batcher, *attributor_, absl::StrCat("fashion-mnist/test/", c), Cancellation()));
    }
    double slowest = 0;
    for (auto& call : calls) {
      EXPECT_TRUE(call->result().ok()) << call->result().status();
      EXPECT_EQ(call->batch_queries(), callers);
      slowest = std::max(slowest, call->ms());
    }
    return slowest;
  };
  EXPECT_GE(round(3), 900);  // no history: the first batch waits out its timeout
  EXPECT_LT(round(3), 600);  // three callers, as the last batch had: it runs when they are in
  EXPECT_GE(round(1), 900);  // a lone caller still waits for company
}

}  // namespace
}  // namespace tda
