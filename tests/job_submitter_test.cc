// Jobs record their submitter: a database of schema version 1 made before the submitter column
// existed opens, gains the column (old rows read ""), and then records submitters; schedule
// runs record "schedule:NAME"; the per-submitter quota of queued + running jobs holds.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include "jobs/job_store.h"
#include "test_support.h"

namespace tda {
namespace {

using ::tda::testing::StatusIs;
using ::testing::HasSubstr;

// The jobs table as version 1 shipped it, without submitter, holding one job.
void WriteOldDatabase(const std::string& path) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  const char* sql = R"sql(
CREATE TABLE jobs(
  id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, spec TEXT NOT NULL,
  state TEXT NOT NULL, progress REAL NOT NULL DEFAULT 0, stage TEXT NOT NULL DEFAULT '',
  eta_seconds REAL NOT NULL DEFAULT -1, created_at REAL NOT NULL,
  started_at REAL NOT NULL DEFAULT 0, finished_at REAL NOT NULL DEFAULT 0,
  error TEXT NOT NULL DEFAULT '', result_path TEXT NOT NULL DEFAULT '',
  attempt INTEGER NOT NULL DEFAULT 0, cancel_requested INTEGER NOT NULL DEFAULT 0,
  schedule_id INTEGER NOT NULL DEFAULT 0);
CREATE TABLE job_log(seq INTEGER PRIMARY KEY AUTOINCREMENT, job_id INTEGER NOT NULL,
  time REAL NOT NULL, line TEXT NOT NULL);
CREATE TABLE schedules(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE,
  cron TEXT NOT NULL, kind TEXT NOT NULL, spec TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE schedule_runs(id INTEGER PRIMARY KEY AUTOINCREMENT, schedule_id INTEGER NOT NULL,
  fire_time REAL NOT NULL, job_id INTEGER NOT NULL, skipped_reason TEXT NOT NULL DEFAULT '');
INSERT INTO jobs(kind, spec, state, created_at) VALUES('sleep', '{}', 'succeeded', 1);
PRAGMA user_version=1;)sql";
  char* error = nullptr;
  ASSERT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, &error), SQLITE_OK) << error;
  sqlite3_close(db);
}

TEST(JobSubmitterTest, AVersion1DatabaseGainsTheColumnAndKeepsItsJobs) {
  testing::TempDir dir;
  const std::string path = dir.file("jobs.db");
  WriteOldDatabase(path);
  absl::StatusOr<std::unique_ptr<JobStore>> store = JobStore::Open(path);
  TDA_ASSERT_OK(store);
  absl::StatusOr<JobRecord> old = (*store)->Get(1);
  TDA_ASSERT_OK(old);
  EXPECT_EQ(old->submitter, "");
  EXPECT_EQ(old->state, JobState::kSucceeded);
  absl::StatusOr<int64_t> id = (*store)->Submit("sleep", "{}", "alice");
  TDA_ASSERT_OK(id);
  EXPECT_EQ((*store)->Get(*id)->submitter, "alice");
  store->reset();
  // Opening again (the column is there now) changes nothing.
  absl::StatusOr<std::unique_ptr<JobStore>> again = JobStore::Open(path);
  TDA_ASSERT_OK(again);
  EXPECT_EQ((*again)->Get(*id)->submitter, "alice");
  TDA_ASSERT_OK((*again)->IntegrityCheck());
}

TEST(JobSubmitterTest, SchedulesSubmitAsThemselvesAndTheQuotaCountsActiveJobs) {
  testing::TempDir dir;
  absl::StatusOr<std::unique_ptr<JobStore>> store = JobStore::Open(dir.file("jobs.db"));
  TDA_ASSERT_OK(store);
  absl::StatusOr<int64_t> schedule =
      (*store)->CreateSchedule("nightly", "* * * * *", "sleep", "{}");
  TDA_ASSERT_OK(schedule);
  absl::StatusOr<int64_t> fired = (*store)->FireSchedule(*schedule, 1.0);
  TDA_ASSERT_OK(fired);
  EXPECT_EQ((*store)->Get(*fired)->submitter, "schedule:nightly");

  TDA_ASSERT_OK((*store)->Submit("sleep", "{}", "bob", 2));
  TDA_ASSERT_OK((*store)->Submit("sleep", "{}", "bob", 2));
  EXPECT_THAT((*store)->Submit("sleep", "{}", "bob", 2).status(),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("quota 2")));
  TDA_ASSERT_OK((*store)->Submit("sleep", "{}", "carol", 2));  // per submitter
  // A finished job no longer counts.
  absl::StatusOr<std::vector<JobRecord>> bobs = (*store)->List(JobState::kQueued, 10);
  TDA_ASSERT_OK(bobs);
  for (const JobRecord& job : *bobs) {
    if (job.submitter == "bob") {
      TDA_ASSERT_OK((*store)->RequestCancel(job.id).status());
      break;
    }
  }
  TDA_ASSERT_OK((*store)->Submit("sleep", "{}", "bob", 2));
}

}  // namespace
}  // namespace tda
