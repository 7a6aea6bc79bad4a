#include "jobs/job_store.h"

#include <sqlite3.h>

#include <chrono>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "common/status_macros.h"
#include "jobs/job_store_statement.h"

namespace tda {

namespace {

constexpr int kBusyTimeoutMs = 10000;

constexpr const char* kSchema = R"sql(
CREATE TABLE jobs(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL,
  spec TEXT NOT NULL,
  state TEXT NOT NULL CHECK(state IN
      ('queued', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted')),
  progress REAL NOT NULL DEFAULT 0,
  stage TEXT NOT NULL DEFAULT '',
  eta_seconds REAL NOT NULL DEFAULT -1,
  created_at REAL NOT NULL,
  started_at REAL NOT NULL DEFAULT 0,
  finished_at REAL NOT NULL DEFAULT 0,
  error TEXT NOT NULL DEFAULT '',
  result_path TEXT NOT NULL DEFAULT '',
  attempt INTEGER NOT NULL DEFAULT 0,
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  schedule_id INTEGER NOT NULL DEFAULT 0);
CREATE INDEX jobs_by_state ON jobs(state, id);
CREATE INDEX jobs_by_schedule ON jobs(schedule_id, id);
CREATE TABLE job_log(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id INTEGER NOT NULL REFERENCES jobs(id),
  time REAL NOT NULL,
  line TEXT NOT NULL);
CREATE INDEX job_log_by_job ON job_log(job_id, seq);
CREATE TABLE schedules(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL UNIQUE,
  cron TEXT NOT NULL,
  kind TEXT NOT NULL,
  spec TEXT NOT NULL,
  created_at REAL NOT NULL);
CREATE TABLE schedule_runs(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  schedule_id INTEGER NOT NULL,
  fire_time REAL NOT NULL,
  job_id INTEGER NOT NULL DEFAULT 0,
  skipped_reason TEXT NOT NULL DEFAULT '');
CREATE INDEX schedule_runs_by_schedule ON schedule_runs(schedule_id, id);
)sql";

constexpr const char* kJobColumns =
    "id, kind, spec, state, progress, stage, eta_seconds, created_at, started_at, finished_at, "
    "error, result_path, attempt, cancel_requested, schedule_id, submitter";

}  // namespace

double NowSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

const char* JobStateName(JobState state) {
  switch (state) {
    case JobState::kQueued:
      return "queued";
    case JobState::kRunning:
      return "running";
    case JobState::kSucceeded:
      return "succeeded";
    case JobState::kFailed:
      return "failed";
    case JobState::kCancelled:
      return "cancelled";
    case JobState::kInterrupted:
      return "interrupted";
  }
  return "unknown";
}

absl::StatusOr<JobState> ParseJobState(std::string_view name) {
  for (JobState s : {JobState::kQueued, JobState::kRunning, JobState::kSucceeded, JobState::kFailed,
                     JobState::kCancelled, JobState::kInterrupted}) {
    if (name == JobStateName(s)) return s;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown job state '", std::string(name),
                   "' (queued, running, succeeded, failed, cancelled, interrupted)"));
}

bool IsTerminal(JobState state) {
  return state != JobState::kQueued && state != JobState::kRunning;
}

absl::Status JobStore::Error(const char* what) const {
  const int code = sqlite3_errcode(db_);
  const std::string message =
      absl::StrCat("job store ", path_, ": ", what, ": ", sqlite3_errmsg(db_));
  switch (code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(message);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(message);
    case SQLITE_CONSTRAINT:
      return absl::AlreadyExistsError(message);
    default:
      return absl::InternalError(message);
  }
}

absl::Status JobStore::Exec(const char* sql) {
  char* message = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &message) != SQLITE_OK) {
    sqlite3_free(message);
    return Error(sql);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<JobStore>> JobStore::Open(const std::string& path) {
  const std::string parent = std::filesystem::path(path).parent_path().string();
  if (!parent.empty()) RETURN_IF_ERROR(MakeDirectories(parent));
  auto store = std::unique_ptr<JobStore>(new JobStore());
  store->path_ = path;
  if (sqlite3_open_v2(path.c_str(), &store->db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    return store->Error("open");
  }
  sqlite3_busy_timeout(store->db_, kBusyTimeoutMs);
  RETURN_IF_ERROR(store->Exec("PRAGMA journal_mode=WAL"));
  RETURN_IF_ERROR(store->Exec("PRAGMA synchronous=FULL"));
  RETURN_IF_ERROR(store->Exec("PRAGMA foreign_keys=ON"));
  RETURN_IF_ERROR(store->CreateSchema());
  RETURN_IF_ERROR(store->AddSubmitterColumn());
  return store;
}

JobStore::~JobStore() { sqlite3_close(db_); }

absl::Status JobStore::CreateSchema() {
  Transaction tx(this);
  RETURN_IF_ERROR(tx.status());
  Statement version(this, "PRAGMA user_version");
  ASSIGN_OR_RETURN(bool row, version.Step());
  const int64_t found = row ? version.Int(0) : 0;
  if (found == kJobStoreSchemaVersion) return absl::OkStatus();
  if (found > kJobStoreSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat("job store ", path_, " has schema version ",
                                                      found, ", newer than this tda's ",
                                                      kJobStoreSchemaVersion));
  }
  RETURN_IF_ERROR(Exec(kSchema));
  RETURN_IF_ERROR(Exec(absl::StrCat("PRAGMA user_version=", kJobStoreSchemaVersion).c_str()));
  return tx.Commit();
}

// Databases of schema version 1 created before jobs had a submitter get the column here (in
// place, idempotent; older rows read as submitter ""), so the version number stays 1.
absl::Status JobStore::AddSubmitterColumn() {
  Transaction tx(this);
  RETURN_IF_ERROR(tx.status());
  Statement columns(this,
                    "SELECT COUNT(*) FROM pragma_table_info('jobs') WHERE name = 'submitter'");
  ASSIGN_OR_RETURN(bool row, columns.Step());
  if (row && columns.Int(0) > 0) return absl::OkStatus();
  RETURN_IF_ERROR(Exec("ALTER TABLE jobs ADD COLUMN submitter TEXT NOT NULL DEFAULT ''"));
  return tx.Commit();
}

absl::StatusOr<int64_t> JobStore::Submit(const std::string& kind, const std::string& spec,
                                         const std::string& submitter,
                                         int64_t max_active_per_submitter) {
  std::lock_guard<std::mutex> lock(mu_);
  Transaction tx(this);
  RETURN_IF_ERROR(tx.status());
  if (max_active_per_submitter > 0) {
    Statement active(this,
                     "SELECT COUNT(*) FROM jobs WHERE submitter = ? AND state IN "
                     "('queued', 'running')");
    active.Bind(1, submitter);
    ASSIGN_OR_RETURN(bool row, active.Step());
    if (row && active.Int(0) >= max_active_per_submitter) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "'", submitter, "' already has ", active.Int(0), " queued or running jobs (quota ",
          max_active_per_submitter, "); wait for one to finish or cancel one"));
    }
  }
  Statement insert(this,
                   "INSERT INTO jobs(kind, spec, state, created_at, submitter) "
                   "VALUES(?, ?, 'queued', ?, ?)");
  RETURN_IF_ERROR(
      insert.Bind(1, kind).Bind(2, spec).Bind(3, NowSeconds()).Bind(4, submitter).Run());
  const int64_t id = sqlite3_last_insert_rowid(db_);
  RETURN_IF_ERROR(tx.Commit());
  return id;
}

namespace {

template <typename S>
JobRecord ReadJob(const S& s) {
  JobRecord job;
  job.id = s.Int(0);
  job.kind = s.Text(1);
  job.spec = s.Text(2);
  job.state = ParseJobState(s.Text(3)).value_or(JobState::kFailed);
  job.progress = s.Real(4);
  job.stage = s.Text(5);
  job.eta_seconds = s.Real(6);
  job.created_at = s.Real(7);
  job.started_at = s.Real(8);
  job.finished_at = s.Real(9);
  job.error = s.Text(10);
  job.result_path = s.Text(11);
  job.attempt = s.Int(12);
  job.cancel_requested = s.Int(13) != 0;
  job.schedule_id = s.Int(14);
  job.submitter = s.Text(15);
  return job;
}

}  // namespace

absl::StatusOr<JobRecord> JobStore::GetLocked(int64_t id) {
  const std::string sql = absl::StrCat("SELECT ", kJobColumns, " FROM jobs WHERE id = ?");
  Statement select(this, sql.c_str());
  select.Bind(1, id);
  ASSIGN_OR_RETURN(bool row, select.Step());
  if (!row) return absl::NotFoundError(absl::StrCat("no job with id ", id));
  return ReadJob(select);
}

absl::StatusOr<JobRecord> JobStore::Get(int64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  return GetLocked(id);
}

absl::StatusOr<std::vector<JobRecord>> JobStore::List(std::optional<JobState> state,
                                                      int64_t limit) {
  if (limit <= 0) return absl::InvalidArgumentError(absl::StrCat("limit must be > 0, got ", limit));
  std::lock_guard<std::mutex> lock(mu_);
  const std::string sql =
      absl::StrCat("SELECT ", kJobColumns, " FROM jobs", state ? " WHERE state = ?" : "",
                   " ORDER BY id DESC LIMIT ?");
  Statement select(this, sql.c_str());
  int arg = 1;
  if (state) select.Bind(arg++, std::string(JobStateName(*state)));
  select.Bind(arg, limit);
  std::vector<JobRecord> jobs;
  while (true) {
    ASSIGN_OR_RETURN(bool row, select.Step());
    if (!row) break;
    jobs.push_back(ReadJob(select));
  }
  return jobs;
}

absl::StatusOr<std::map<JobState, int64_t>> JobStore::CountByState() {
  std::lock_guard<std::mutex> lock(mu_);
  Statement select(this, "SELECT state, COUNT(*) FROM jobs GROUP BY state");
  std::map<JobState, int64_t> counts;
  while (true) {
    ASSIGN_OR_RETURN(bool row, select.Step());
    if (!row) break;
    ASSIGN_OR_RETURN(JobState state, ParseJobState(select.Text(0)));
    counts[state] = select.Int(1);
  }
  return counts;
}

absl::StatusOr<std::optional<JobRecord>> JobStore::ClaimNextQueued() {
  std::lock_guard<std::mutex> lock(mu_);
  Transaction tx(this);
  RETURN_IF_ERROR(tx.status());
  Statement select(this, "SELECT id FROM jobs WHERE state = 'queued' ORDER BY id LIMIT 1");
  ASSIGN_OR_RETURN(bool row, select.Step());
  if (!row) return std::optional<JobRecord>();
  const int64_t id = select.Int(0);
  Statement update(this,
                   "UPDATE jobs SET state = 'running', attempt = attempt + 1, started_at = ?, "
                   "progress = 0, stage = '', eta_seconds = -1 WHERE id = ?");
  RETURN_IF_ERROR(update.Bind(1, NowSeconds()).Bind(2, id).Run());
  ASSIGN_OR_RETURN(JobRecord job, GetLocked(id));
  RETURN_IF_ERROR(tx.Commit());
  return std::optional<JobRecord>(std::move(job));
}

absl::Status JobStore::UpdateProgress(int64_t id, double progress, const std::string& stage,
                                      double eta_seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  Transaction tx(this);
  RETURN_IF_ERROR(tx.status());
  Statement update(this,
                   "UPDATE jobs SET progress = ?, stage = ?, eta_seconds = ? "
                   "WHERE id = ? AND state = 'running'");
  RETURN_IF_ERROR(update.Bind(1, progress).Bind(2, stage).Bind(3, eta_seconds).Bind(4, id).Run());
  if (sqlite3_changes(db_) == 0) {
    return absl::FailedPreconditionError(absl::StrCat("job ", id, " is not running"));
  }
  return tx.Commit();
}

absl::Status JobStore::AppendLog(int64_t id, const std::string& line) {
  std::lock_guard<std::mutex> lock(mu_);
  Transaction tx(this);
  RETURN_IF_ERROR(tx.status());
  Statement insert(this, "INSERT INTO job_log(job_id, time, line) VALUES(?, ?, ?)");
  absl::Status s = insert.Bind(1, id).Bind(2, NowSeconds()).Bind(3, line).Run();
  if (absl::IsAlreadyExists(s)) return absl::NotFoundError(absl::StrCat("no job with id ", id));
  RETURN_IF_ERROR(s);
  return tx.Commit();
}

absl::StatusOr<std::vector<JobLogLine>> JobStore::LogSince(int64_t id, int64_t after_seq,
                                                           int64_t limit) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement select(this,
                   "SELECT seq, time, line FROM job_log WHERE job_id = ? AND seq > ? "
                   "ORDER BY seq LIMIT ?");
  select.Bind(1, id).Bind(2, after_seq).Bind(3, limit);
  std::vector<JobLogLine> lines;
  while (true) {
    ASSIGN_OR_RETURN(bool row, select.Step());
    if (!row) break;
    lines.push_back({select.Int(0), select.Real(1), select.Text(2)});
  }
  return lines;
}

absl::Status JobStore::Finish(int64_t id, JobState state, const std::string& error,
                              const std::string& result_path) {
  if (!IsTerminal(state)) {
    return absl::InvalidArgumentError(
        absl::StrCat("Finish needs a terminal state, got ", JobStateName(state)));
  }
  std::lock_guard<std::mutex> lock(mu_);
  Transaction tx(this);
  RETURN_IF_ERROR(tx.status());
  Statement update(this,
                   "UPDATE jobs SET state = ?, error = ?, result_path = ?, finished_at = ?, "
                   "progress = CASE WHEN ? = 'succeeded' THEN 1 ELSE progress END, "
                   "eta_seconds = -1 WHERE id = ? AND state = 'running'");
  const std::string name = JobStateName(state);
  RETURN_IF_ERROR(update.Bind(1, name)
                      .Bind(2, error)
                      .Bind(3, result_path)
                      .Bind(4, NowSeconds())
                      .Bind(5, name)
                      .Bind(6, id)
                      .Run());
  if (sqlite3_changes(db_) == 0) {
    ASSIGN_OR_RETURN(JobRecord job, GetLocked(id));
    return absl::FailedPreconditionError(
        absl::StrCat("job ", id, " is ", JobStateName(job.state), ", not running"));
  }
  return tx.Commit();
}

absl::StatusOr<JobState> JobStore::RequestCancel(int64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  Transaction tx(this);
  RETURN_IF_ERROR(tx.status());
  ASSIGN_OR_RETURN(JobRecord job, GetLocked(id));
  if (IsTerminal(job.state)) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", id, " has already finished (", JobStateName(job.state), ")"));
  }
  if (job.state == JobState::kQueued) {
    Statement update(this,
                     "UPDATE jobs SET state = 'cancelled', cancel_requested = 1, finished_at = ? "
                     "WHERE id = ?");
    RETURN_IF_ERROR(update.Bind(1, NowSeconds()).Bind(2, id).Run());
  } else {
    Statement update(this, "UPDATE jobs SET cancel_requested = 1 WHERE id = ?");
    RETURN_IF_ERROR(update.Bind(1, id).Run());
  }
  RETURN_IF_ERROR(tx.Commit());
  return job.state == JobState::kQueued ? JobState::kCancelled : JobState::kRunning;
}

absl::Status JobStore::Recover(int64_t id, bool requeue, const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  Transaction tx(this);
  RETURN_IF_ERROR(tx.status());
  if (requeue) {
    Statement update(this, "UPDATE jobs SET state = 'queued' WHERE id = ? AND state = 'running'");
    RETURN_IF_ERROR(update.Bind(1, id).Run());
  } else {
    Statement update(this,
                     "UPDATE jobs SET state = 'interrupted', error = ?, finished_at = ?, "
                     "eta_seconds = -1 WHERE id = ? AND state = 'running'");
    RETURN_IF_ERROR(update.Bind(1, reason).Bind(2, NowSeconds()).Bind(3, id).Run());
  }
  if (sqlite3_changes(db_) == 0) {
    return absl::FailedPreconditionError(absl::StrCat("job ", id, " is not running"));
  }
  Statement log(this, "INSERT INTO job_log(job_id, time, line) VALUES(?, ?, ?)");
  RETURN_IF_ERROR(log.Bind(1, id).Bind(2, NowSeconds()).Bind(3, reason).Run());
  return tx.Commit();
}

absl::Status JobStore::IntegrityCheck() {
  std::lock_guard<std::mutex> lock(mu_);
  Statement check(this, "PRAGMA integrity_check");
  std::string report;
  while (true) {
    ASSIGN_OR_RETURN(bool row, check.Step());
    if (!row) break;
    absl::StrAppend(&report, report.empty() ? "" : "; ", check.Text(0));
  }
  if (report != "ok") {
    return absl::DataLossError(absl::StrCat("job store ", path_, ": integrity check: ", report));
  }
  return absl::OkStatus();
}

}  // namespace tda
