// The durable record of jobs, their logs and schedules: one SQLite database file (normally
// "<state dir>/jobs.db", beside the server's data).
//
// Durability. WAL journal with synchronous=FULL: every committed transaction is fsynced before
// the call returns, so a job the API has acknowledged survives kill -9 and power loss. FULL
// rather than NORMAL because NORMAL in WAL mode may lose the last transactions on power loss,
// and the write rate is low (progress is written at a bounded rate, ~2/s per running job), so
// the extra fsync costs nothing that matters. busy_timeout lets several connections (the
// server and its job worker processes) write the same file. Every state change is one
// transaction (BEGIN IMMEDIATE ... COMMIT); a failed statement rolls the transaction back.
//
// Schema (version kJobStoreSchemaVersion in PRAGMA user_version; a newer file is refused):
//   jobs(id, kind, spec JSON, state, progress, stage, eta_seconds, created_at, started_at,
//        finished_at, error, result_path, attempt, cancel_requested, schedule_id, submitter)
//   job_log(seq, job_id, time, line)
//   schedules(id, name, cron, kind, spec, created_at)
//   schedule_runs(id, schedule_id, fire_time, job_id, skipped_reason)
// Times are UTC seconds since the epoch (REAL).
//
// State machine: queued -> running -> succeeded | failed | cancelled; queued -> cancelled;
// running -> queued (requeued after a crash) | interrupted. Terminal states never change.
//
// Thread-safety: a JobStore is safe to use from several threads (one connection behind a
// mutex); several JobStores (also in other processes) may open the same file.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

struct sqlite3;

namespace tda {

inline constexpr int kJobStoreSchemaVersion = 1;

enum class JobState { kQueued, kRunning, kSucceeded, kFailed, kCancelled, kInterrupted };

const char* JobStateName(JobState state);  // "queued", "running", ...
[[nodiscard]] absl::StatusOr<JobState> ParseJobState(std::string_view name);
bool IsTerminal(JobState state);

struct JobRecord {
  int64_t id = 0;
  std::string kind;
  std::string spec;  // JSON object
  JobState state = JobState::kQueued;
  double progress = 0;                                     // fraction in [0, 1]
  std::string stage;                                       // e.g. "gradients"
  double eta_seconds = -1;                                 // < 0: unknown
  double created_at = 0, started_at = 0, finished_at = 0;  // 0: not yet
  std::string error;
  std::string result_path;
  int64_t attempt = 0;  // times the job has been started
  bool cancel_requested = false;
  int64_t schedule_id = 0;  // the schedule that fired it; 0 for direct submissions
  // Who submitted it: the token name (server/caller.h), "schedule:NAME" for a job a schedule
  // fired, "" for jobs recorded before submitters were.
  std::string submitter;
};

// The submitter recorded for the jobs of schedule `name`.
inline std::string ScheduledJobSubmitter(const std::string& name) { return "schedule:" + name; }

struct JobLogLine {
  int64_t seq = 0;  // increasing over the whole database
  double time = 0;
  std::string line;
};

struct ScheduleRecord {
  int64_t id = 0;
  std::string name;
  std::string cron;
  std::string kind;
  std::string spec;
  double created_at = 0;
};

struct ScheduleRun {
  int64_t schedule_id = 0;
  double fire_time = 0;
  int64_t job_id = 0;          // the job submitted; 0 when the run was skipped
  std::string skipped_reason;  // why it was skipped
};

// Current time as the store records it (UTC epoch seconds with sub-second precision).
double NowSeconds();

class JobStore {
 public:
  // Opens or creates the database (and its parent directory). kFailedPrecondition for a file
  // of a newer schema version, kDataLoss when it is not a database, kUnavailable when locked.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<JobStore>> Open(const std::string& path);
  ~JobStore();
  JobStore(const JobStore&) = delete;
  JobStore& operator=(const JobStore&) = delete;

  const std::string& path() const { return path_; }

  // A new queued job of `submitter`; returns its id. With max_active_per_submitter > 0,
  // kResourceExhausted when the submitter already has that many jobs queued or running
  // (checked in the same transaction as the insert).
  [[nodiscard]] absl::StatusOr<int64_t> Submit(const std::string& kind, const std::string& spec,
                                 const std::string& submitter = "",
                                 int64_t max_active_per_submitter = 0);
  [[nodiscard]] absl::StatusOr<JobRecord> Get(int64_t id);  // kNotFound
  // Newest first; `state` filters when set; at most `limit` (> 0) rows.
  [[nodiscard]] absl::StatusOr<std::vector<JobRecord>> List(std::optional<JobState> state, int64_t limit);
  // How many jobs are in each state (states without jobs are absent); one GROUP BY query.
  [[nodiscard]] absl::StatusOr<std::map<JobState, int64_t>> CountByState();

  // The oldest queued job moved to running (attempt + 1, started_at now), or nullopt.
  [[nodiscard]] absl::StatusOr<std::optional<JobRecord>> ClaimNextQueued();
  // Progress of a running job (kFailedPrecondition when it is not running).
  [[nodiscard]] absl::Status UpdateProgress(int64_t id, double progress, const std::string& stage,
                              double eta_seconds);
  [[nodiscard]] absl::Status AppendLog(int64_t id, const std::string& line);
  // Log lines with seq > after_seq, oldest first, at most `limit`.
  [[nodiscard]] absl::StatusOr<std::vector<JobLogLine>> LogSince(int64_t id, int64_t after_seq, int64_t limit);
  // running -> a terminal state; kFailedPrecondition when the job is not running.
  [[nodiscard]] absl::Status Finish(int64_t id, JobState state, const std::string& error,
                      const std::string& result_path);
  // A queued job becomes cancelled at once; a running job gets cancel_requested (its runner
  // stops it). Returns the state after the call; kFailedPrecondition for a finished job.
  [[nodiscard]] absl::StatusOr<JobState> RequestCancel(int64_t id);
  // Crash recovery of a job found running: back to queued (`requeue`) or interrupted, with
  // `reason` logged (and stored as the error when interrupted).
  [[nodiscard]] absl::Status Recover(int64_t id, bool requeue, const std::string& reason);

  [[nodiscard]] absl::StatusOr<int64_t> CreateSchedule(const std::string& name, const std::string& cron,
                                         const std::string& kind, const std::string& spec);
  [[nodiscard]] absl::StatusOr<std::vector<ScheduleRecord>> ListSchedules();
  [[nodiscard]] absl::Status DeleteSchedule(int64_t id);  // kNotFound; its history stays
  // One firing of a schedule, in one transaction: when the schedule's previous job is still
  // queued or running the run is recorded as skipped (returns 0), otherwise a job is
  // submitted and recorded (returns its id).
  [[nodiscard]] absl::StatusOr<int64_t> FireSchedule(int64_t schedule_id, double fire_time);
  // Newest first.
  [[nodiscard]] absl::StatusOr<std::vector<ScheduleRun>> ScheduleHistory(int64_t schedule_id, int64_t limit);

  // PRAGMA integrity_check; kDataLoss with SQLite's report when not "ok".
  [[nodiscard]] absl::Status IntegrityCheck();

 private:
  class Statement;
  class Transaction;
  JobStore() = default;
  [[nodiscard]] absl::Status Exec(const char* sql);
  [[nodiscard]] absl::Status Error(const char* what) const;  // the connection's last error as a Status
  [[nodiscard]] absl::Status CreateSchema();
  [[nodiscard]] absl::Status AddSubmitterColumn();
  [[nodiscard]] absl::StatusOr<JobRecord> GetLocked(int64_t id);

  std::string path_;
  sqlite3* db_ = nullptr;
  std::mutex mu_;  // serialises use of db_
};

}  // namespace tda
