// JobStore's cron schedules: create, list, delete, fire (one job per firing, skipped while the
// previous run is active) and their run history.
#include <sqlite3.h>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "jobs/job_store.h"
#include "jobs/job_store_statement.h"

namespace tda {

absl::StatusOr<int64_t> JobStore::CreateSchedule(const std::string& name, const std::string& cron,
                                                 const std::string& kind, const std::string& spec) {
  std::lock_guard<std::mutex> lock(mu_);
  Transaction tx(this);
  RETURN_IF_ERROR(tx.status());
  Statement insert(
      this, "INSERT INTO schedules(name, cron, kind, spec, created_at) VALUES(?, ?, ?, ?, ?)");
  absl::Status s =
      insert.Bind(1, name).Bind(2, cron).Bind(3, kind).Bind(4, spec).Bind(5, NowSeconds()).Run();
  if (absl::IsAlreadyExists(s)) {
    return absl::AlreadyExistsError(absl::StrCat("a schedule named '", name, "' exists"));
  }
  RETURN_IF_ERROR(s);
  const int64_t id = sqlite3_last_insert_rowid(db_);
  RETURN_IF_ERROR(tx.Commit());
  return id;
}

absl::StatusOr<std::vector<ScheduleRecord>> JobStore::ListSchedules() {
  std::lock_guard<std::mutex> lock(mu_);
  Statement select(this,
                   "SELECT id, name, cron, kind, spec, created_at FROM schedules ORDER BY id");
  std::vector<ScheduleRecord> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, select.Step());
    if (!row) break;
    out.push_back({select.Int(0), select.Text(1), select.Text(2), select.Text(3), select.Text(4),
                   select.Real(5)});
  }
  return out;
}

absl::Status JobStore::DeleteSchedule(int64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  Transaction tx(this);
  RETURN_IF_ERROR(tx.status());
  Statement del(this, "DELETE FROM schedules WHERE id = ?");
  RETURN_IF_ERROR(del.Bind(1, id).Run());
  if (sqlite3_changes(db_) == 0)
    return absl::NotFoundError(absl::StrCat("no schedule with id ", id));
  return tx.Commit();
}

absl::StatusOr<int64_t> JobStore::FireSchedule(int64_t schedule_id, double fire_time) {
  std::lock_guard<std::mutex> lock(mu_);
  Transaction tx(this);
  RETURN_IF_ERROR(tx.status());
  Statement schedule(this, "SELECT kind, spec, name FROM schedules WHERE id = ?");
  schedule.Bind(1, schedule_id);
  ASSIGN_OR_RETURN(bool found, schedule.Step());
  if (!found) return absl::NotFoundError(absl::StrCat("no schedule with id ", schedule_id));
  Statement active(this,
                   "SELECT id, state FROM jobs WHERE schedule_id = ? AND state IN "
                   "('queued', 'running') ORDER BY id DESC LIMIT 1");
  active.Bind(1, schedule_id);
  ASSIGN_OR_RETURN(bool busy, active.Step());
  int64_t job_id = 0;
  std::string skipped;
  if (busy) {
    skipped = absl::StrCat("previous run (job ", active.Int(0), ") is still ", active.Text(1));
  } else {
    Statement insert(this,
                     "INSERT INTO jobs(kind, spec, state, created_at, schedule_id, submitter) "
                     "VALUES(?, ?, 'queued', ?, ?, ?)");
    RETURN_IF_ERROR(insert.Bind(1, schedule.Text(0))
                        .Bind(2, schedule.Text(1))
                        .Bind(3, NowSeconds())
                        .Bind(4, schedule_id)
                        .Bind(5, ScheduledJobSubmitter(schedule.Text(2)))
                        .Run());
    job_id = sqlite3_last_insert_rowid(db_);
  }
  Statement run(this,
                "INSERT INTO schedule_runs(schedule_id, fire_time, job_id, skipped_reason) "
                "VALUES(?, ?, ?, ?)");
  RETURN_IF_ERROR(
      run.Bind(1, schedule_id).Bind(2, fire_time).Bind(3, job_id).Bind(4, skipped).Run());
  RETURN_IF_ERROR(tx.Commit());
  return job_id;
}

absl::StatusOr<std::vector<ScheduleRun>> JobStore::ScheduleHistory(int64_t schedule_id,
                                                                   int64_t limit) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement select(this,
                   "SELECT schedule_id, fire_time, job_id, skipped_reason FROM schedule_runs "
                   "WHERE schedule_id = ? ORDER BY id DESC LIMIT ?");
  select.Bind(1, schedule_id).Bind(2, limit);
  std::vector<ScheduleRun> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, select.Step());
    if (!row) break;
    out.push_back({select.Int(0), select.Real(1), select.Int(2), select.Text(3)});
  }
  return out;
}

}  // namespace tda
