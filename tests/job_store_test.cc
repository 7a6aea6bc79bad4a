// JobStore on a real SQLite file: the job state machine, logs, schedules with skip-if-running,
// reopening (records survive, newer schema refused, a non-database refused), and concurrent
// writers through separate connections (each job claimed exactly once, integrity intact).
#include "jobs/job_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <fstream>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "test_support.h"

namespace tda {
namespace {

using ::tda::testing::StatusIs;
using ::testing::HasSubstr;

std::unique_ptr<JobStore> OpenStore(const std::string& path) {
  absl::StatusOr<std::unique_ptr<JobStore>> store = JobStore::Open(path);
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? std::move(*store) : nullptr;
}

TEST(JobStoreTest, JobMovesThroughItsStates) {
  testing::TempDir dir;
  std::unique_ptr<JobStore> store = OpenStore(dir.file("state/jobs.db"));
  ASSERT_NE(store, nullptr);
  absl::StatusOr<int64_t> a = store->Submit("sleep", R"({"seconds":1})");
  absl::StatusOr<int64_t> b = store->Submit("sleep", R"({"seconds":2})");
  TDA_ASSERT_OK(a);
  TDA_ASSERT_OK(b);
  absl::StatusOr<JobRecord> queued = store->Get(*a);
  TDA_ASSERT_OK(queued);
  EXPECT_EQ(queued->state, JobState::kQueued);
  EXPECT_EQ(queued->spec, R"({"seconds":1})");
  EXPECT_GT(queued->created_at, 0);
  EXPECT_EQ(queued->attempt, 0);

  // Oldest first.
  absl::StatusOr<std::optional<JobRecord>> claimed = store->ClaimNextQueued();
  TDA_ASSERT_OK(claimed);
  ASSERT_TRUE(claimed->has_value());
  EXPECT_EQ((*claimed)->id, *a);
  EXPECT_EQ((*claimed)->state, JobState::kRunning);
  EXPECT_EQ((*claimed)->attempt, 1);
  EXPECT_GT((*claimed)->started_at, 0);

  TDA_ASSERT_OK(store->UpdateProgress(*a, 0.25, "sleep", 3.0));
  TDA_ASSERT_OK(store->AppendLog(*a, "first"));
  TDA_ASSERT_OK(store->AppendLog(*a, "second"));
  absl::StatusOr<JobRecord> running = store->Get(*a);
  TDA_ASSERT_OK(running);
  EXPECT_DOUBLE_EQ(running->progress, 0.25);
  EXPECT_EQ(running->stage, "sleep");
  EXPECT_DOUBLE_EQ(running->eta_seconds, 3.0);
  absl::StatusOr<std::vector<JobLogLine>> log = store->LogSince(*a, 0, 100);
  TDA_ASSERT_OK(log);
  ASSERT_EQ(log->size(), 2u);
  EXPECT_EQ((*log)[1].line, "second");
  absl::StatusOr<std::vector<JobLogLine>> newer = store->LogSince(*a, (*log)[0].seq, 100);
  TDA_ASSERT_OK(newer);
  ASSERT_EQ(newer->size(), 1u);
  EXPECT_EQ((*newer)[0].line, "second");

  TDA_ASSERT_OK(store->Finish(*a, JobState::kSucceeded, "", "/tmp/result"));
  absl::StatusOr<JobRecord> done = store->Get(*a);
  TDA_ASSERT_OK(done);
  EXPECT_EQ(done->state, JobState::kSucceeded);
  EXPECT_DOUBLE_EQ(done->progress, 1.0);
  EXPECT_EQ(done->result_path, "/tmp/result");
  EXPECT_GE(done->finished_at, done->started_at);

  // Terminal states never change.
  EXPECT_THAT(store->Finish(*a, JobState::kFailed, "late", ""),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("succeeded, not running")));
  EXPECT_THAT(store->UpdateProgress(*a, 0.5, "x", 1),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not running")));
  EXPECT_THAT(store->RequestCancel(*a),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("already finished")));
  EXPECT_THAT(store->Finish(*b, JobState::kRunning, "", ""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("terminal state")));

  // Cancelling a queued job is immediate.
  absl::StatusOr<JobState> cancelled = store->RequestCancel(*b);
  TDA_ASSERT_OK(cancelled);
  EXPECT_EQ(*cancelled, JobState::kCancelled);
  absl::StatusOr<std::optional<JobRecord>> none = store->ClaimNextQueued();
  TDA_ASSERT_OK(none);
  EXPECT_FALSE(none->has_value());

  EXPECT_THAT(store->Get(999), StatusIs(absl::StatusCode::kNotFound, HasSubstr("999")));
  EXPECT_THAT(store->AppendLog(999, "x"), StatusIs(absl::StatusCode::kNotFound, HasSubstr("999")));
  absl::StatusOr<std::vector<JobRecord>> all = store->List(std::nullopt, 10);
  TDA_ASSERT_OK(all);
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].id, *b);  // newest first
  absl::StatusOr<std::vector<JobRecord>> succeeded = store->List(JobState::kSucceeded, 10);
  TDA_ASSERT_OK(succeeded);
  ASSERT_EQ(succeeded->size(), 1u);
  EXPECT_EQ((*succeeded)[0].id, *a);
}

TEST(JobStoreTest, CancelOfARunningJobIsARequestAndRecoveryRequeuesOrInterrupts) {
  testing::TempDir dir;
  std::unique_ptr<JobStore> store = OpenStore(dir.file("jobs.db"));
  ASSERT_NE(store, nullptr);
  const int64_t a = *store->Submit("sleep", "{}");
  const int64_t b = *store->Submit("sleep", "{}");
  TDA_ASSERT_OK(store->ClaimNextQueued());
  TDA_ASSERT_OK(store->ClaimNextQueued());
  absl::StatusOr<JobState> state = store->RequestCancel(a);
  TDA_ASSERT_OK(state);
  EXPECT_EQ(*state, JobState::kRunning);
  EXPECT_TRUE(store->Get(a)->cancel_requested);
  EXPECT_EQ(store->Get(a)->state, JobState::kRunning);

  TDA_ASSERT_OK(store->Recover(a, /*requeue=*/true, "server restarted"));
  TDA_ASSERT_OK(store->Recover(b, /*requeue=*/false, "interrupted: not restartable"));
  EXPECT_EQ(store->Get(a)->state, JobState::kQueued);
  EXPECT_EQ(store->Get(b)->state, JobState::kInterrupted);
  EXPECT_EQ(store->Get(b)->error, "interrupted: not restartable");
  EXPECT_EQ(store->LogSince(b, 0, 10)->back().line, "interrupted: not restartable");
  EXPECT_THAT(store->Recover(b, true, "again"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not running")));
  // The requeued job runs again as attempt 2.
  absl::StatusOr<std::optional<JobRecord>> again = store->ClaimNextQueued();
  TDA_ASSERT_OK(again);
  ASSERT_TRUE(again->has_value());
  EXPECT_EQ((*again)->id, a);
  EXPECT_EQ((*again)->attempt, 2);
}

TEST(JobStoreTest, ScheduleFiringSkipsWhileThePreviousRunIsActive) {
  testing::TempDir dir;
  std::unique_ptr<JobStore> store = OpenStore(dir.file("jobs.db"));
  ASSERT_NE(store, nullptr);
  absl::StatusOr<int64_t> id = store->CreateSchedule("nightly", "0 3 * * *", "sleep", "{}");
  TDA_ASSERT_OK(id);
  EXPECT_THAT(store->CreateSchedule("nightly", "0 4 * * *", "sleep", "{}"),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("nightly")));
  absl::StatusOr<int64_t> first = store->FireSchedule(*id, 100);
  TDA_ASSERT_OK(first);
  EXPECT_GT(*first, 0);
  EXPECT_EQ(store->Get(*first)->schedule_id, *id);
  absl::StatusOr<int64_t> second = store->FireSchedule(*id, 200);  // first still queued
  TDA_ASSERT_OK(second);
  EXPECT_EQ(*second, 0);
  TDA_ASSERT_OK(store->ClaimNextQueued());
  EXPECT_EQ(*store->FireSchedule(*id, 300), 0);  // first running
  TDA_ASSERT_OK(store->Finish(*first, JobState::kFailed, "boom", ""));
  absl::StatusOr<int64_t> fourth = store->FireSchedule(*id, 400);
  TDA_ASSERT_OK(fourth);
  EXPECT_GT(*fourth, *first);

  absl::StatusOr<std::vector<ScheduleRun>> history = store->ScheduleHistory(*id, 10);
  TDA_ASSERT_OK(history);
  ASSERT_EQ(history->size(), 4u);
  EXPECT_EQ((*history)[0].fire_time, 400);
  EXPECT_EQ((*history)[0].job_id, *fourth);
  EXPECT_THAT((*history)[1].skipped_reason,
              HasSubstr(absl::StrCat("job ", *first, ") is still running")));
  EXPECT_THAT((*history)[2].skipped_reason, HasSubstr("is still queued"));
  EXPECT_EQ((*history)[3].job_id, *first);

  TDA_ASSERT_OK(store->DeleteSchedule(*id));
  EXPECT_THAT(store->DeleteSchedule(*id),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no schedule")));
  EXPECT_THAT(store->FireSchedule(*id, 500),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no schedule")));
  EXPECT_TRUE(store->ListSchedules()->empty());
}

TEST(JobStoreTest, ReopeningKeepsEverythingAndRefusesNewerOrForeignFiles) {
  testing::TempDir dir;
  const std::string path = dir.file("jobs.db");
  int64_t id = 0;
  {
    std::unique_ptr<JobStore> store = OpenStore(path);
    ASSERT_NE(store, nullptr);
    id = *store->Submit("sleep", R"({"seconds":5})");
    TDA_ASSERT_OK(store->ClaimNextQueued());
    TDA_ASSERT_OK(store->UpdateProgress(id, 0.5, "sleep", 2.5));
    TDA_ASSERT_OK(store->AppendLog(id, "half way"));
    TDA_ASSERT_OK(store->CreateSchedule("s", "* * * * *", "sleep", "{}"));
  }
  {
    std::unique_ptr<JobStore> store = OpenStore(path);
    ASSERT_NE(store, nullptr);
    absl::StatusOr<JobRecord> job = store->Get(id);
    TDA_ASSERT_OK(job);
    EXPECT_EQ(job->state, JobState::kRunning);
    EXPECT_DOUBLE_EQ(job->progress, 0.5);
    EXPECT_EQ(store->LogSince(id, 0, 10)->at(0).line, "half way");
    EXPECT_EQ(store->ListSchedules()->size(), 1u);
    TDA_ASSERT_OK(store->IntegrityCheck());
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version=99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  EXPECT_THAT(JobStore::Open(path),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("schema version 99")));

  const std::string garbage = dir.file("garbage.db");
  std::ofstream(garbage) << std::string(8192, 'x');
  EXPECT_THAT(JobStore::Open(garbage),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("garbage.db")));
}

TEST(JobStoreTest, ConcurrentConnectionsClaimEveryJobExactlyOnce) {
  testing::TempDir dir;
  const std::string path = dir.file("jobs.db");
  ASSERT_NE(OpenStore(path), nullptr);  // creates the schema
  constexpr int kWriters = 4, kJobsPerWriter = 40, kClaimers = 3;
  std::atomic<int> failures{0};
  std::atomic<int> submitted{0};
  std::vector<std::vector<int64_t>> claimed(kClaimers);
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      std::unique_ptr<JobStore> store = OpenStore(path);
      if (store == nullptr) return failures.fetch_add(1), void();
      for (int j = 0; j < kJobsPerWriter; ++j) {
        absl::StatusOr<int64_t> id = store->Submit("sleep", absl::StrCat(R"({"seconds":)", w, "}"));
        if (!id.ok() || !store->AppendLog(*id, "submitted").ok()) failures.fetch_add(1);
        submitted.fetch_add(1);
      }
    });
  }
  for (int c = 0; c < kClaimers; ++c) {
    threads.emplace_back([&, c] {
      std::unique_ptr<JobStore> store = OpenStore(path);
      if (store == nullptr) return failures.fetch_add(1), void();
      while (true) {
        const bool writers_done = submitted.load() == kWriters * kJobsPerWriter;
        absl::StatusOr<std::optional<JobRecord>> job = store->ClaimNextQueued();
        if (!job.ok()) {
          failures.fetch_add(1);
          return;
        }
        if (!job->has_value()) {
          if (writers_done) return;
          std::this_thread::yield();
          continue;
        }
        claimed[c].push_back((*job)->id);
        if (!store->Finish((*job)->id, JobState::kSucceeded, "", "").ok()) failures.fetch_add(1);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  std::set<int64_t> ids;
  size_t total = 0;
  for (const auto& list : claimed) {
    total += list.size();
    ids.insert(list.begin(), list.end());
  }
  EXPECT_EQ(total, static_cast<size_t>(kWriters * kJobsPerWriter));  // none claimed twice
  EXPECT_EQ(ids.size(), total);
  std::unique_ptr<JobStore> store = OpenStore(path);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->List(JobState::kSucceeded, 1000)->size(), static_cast<size_t>(total));
  TDA_ASSERT_OK(store->IntegrityCheck());
}

}  // namespace
}  // namespace tda
