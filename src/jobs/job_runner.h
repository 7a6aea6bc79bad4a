// Runs the jobs of a JobStore in worker processes, beside query serving, and fires schedules.
//
// Concurrency: at most `max_running` jobs run at once, each in its own tda-job-worker process
// (job_worker.h) supervised by one runner thread: the runner's own small pool, separate from
// the threads that serve queries. Workers get `worker_threads` compute threads
// (OMP_NUM_THREADS) and a lower CPU priority (nice `worker_nice`), so queries are not starved.
// A worker dies with the server (PR_SET_PDEATHSIG), so no job outlives a crash unrecorded.
//
// Scheduling decisions are made in one ordered function, MaybeScheduleJobs (after leveldb's
// MaybeScheduleCompaction): shutting down? store error waiting to clear? all slots busy?
// nothing queued? otherwise claim the oldest queued job and start its worker.
//
// Crash recovery (Start): jobs found `running` were cut off by a crash or kill -9 of the
// previous server. A restartable kind (job_kinds.h) is requeued and re-run from scratch, up to
// `max_attempts` attempts; other kinds are marked `interrupted` with the reason. Either way
// the reason is in the job's log. Queued jobs simply run.
//
// Cancel: a queued job is cancelled at once; a running job's worker gets SIGTERM (it stops at
// its next progress report or unit of work, removes its temporary output and records
// `cancelled`), and SIGKILL after `cancel_grace_seconds` if it has not exited by then.
//
// Schedules: every tick (`tick_seconds`) the runner fires the schedules whose next time
// (cron.h, UTC) has come: JobStore::FireSchedule submits a job, or records the run as skipped
// when the schedule's previous job is still queued or running. Firing times missed while the
// server was down are not caught up; the next time is computed from the current time.
//
// Thread-safety: all public methods may be called concurrently. One runner per database.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "jobs/job_paths.h"
#include "jobs/job_store.h"

namespace tda {

struct JobRunnerOptions {
  std::string db_path;        // the SQLite job store
  std::string worker_binary;  // path of tda-job-worker
  int max_running = 1;        // jobs running at once
  int worker_threads = 1;     // compute threads per job
  int worker_nice = 10;       // CPU priority of the workers (0 = the server's)
  double cancel_grace_seconds = 5;
  double tick_seconds = 0.1;  // how often schedules and the queue are checked
  int64_t max_attempts = 3;   // runs of a restartable job before it is marked interrupted
  // Where job paths may point (job_paths.h); passed on to every worker, which checks again.
  // Start fills in what is empty: state_dir = the database's directory, the roots under it
  // (MakeJobRoots), creating them.
  JobRoots roots;
  int64_t max_active_per_submitter = 0;  // queued + running jobs per submitter; 0 = no limit
};

class JobRunner {
 public:
  // Opens the store, recovers jobs left running and starts the runner threads.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<JobRunner>> Start(const JobRunnerOptions& options);
  ~JobRunner();  // Shutdown()

  JobStore& store() { return *store_; }

  // Validates the spec (ValidateSpec) and queues the job of `submitter` with its paths
  // resolved; kResourceExhausted beyond max_active_per_submitter.
  [[nodiscard]] absl::StatusOr<JobRecord> Submit(const std::string& kind, const std::string& spec_json,
                                   const std::string& submitter = "");
  // As described in the file comment; returns the job after the call. kNotFound,
  // kFailedPrecondition for a job that has finished.
  [[nodiscard]] absl::StatusOr<JobRecord> Cancel(int64_t id);

  // Validates the cron expression and the spec (ValidateSpec).
  [[nodiscard]] absl::StatusOr<ScheduleRecord> CreateSchedule(const std::string& name, const std::string& cron,
                                                const std::string& kind,
                                                const std::string& spec_json);
  [[nodiscard]] absl::Status DeleteSchedule(int64_t id);
  // When a schedule fires next (UTC epoch seconds); 0 when not yet computed.
  int64_t NextFireTime(int64_t schedule_id);

  // Stops scheduling, kills running workers and records their jobs as the crash recovery
  // would (requeued or interrupted, reason "server stopped"). Idempotent.
  void Shutdown();

 private:
  struct Running {
    pid_t pid = 0;
    bool cancel = false;
    std::chrono::steady_clock::time_point cancel_at;
    bool killed = false;
  };

  explicit JobRunner(const JobRunnerOptions& options) : options_(options) {}
  // NormalizeJobSpec, then ResolveSpecPaths against the roots (kPermissionDenied for a path
  // outside them), then CheckSpecOutputs for a new job (kAlreadyExists / kFailedPrecondition
  // for an existing output it may not replace). Returns the spec to store.
  [[nodiscard]] absl::StatusOr<std::string> ValidateSpec(const std::string& kind,
                                                         const std::string& spec_json) const;
  [[nodiscard]] absl::Status RecoverInterruptedJobs(const std::string& why);
  void ControlLoop();
  void MaybeScheduleJobs();  // REQUIRES(mu_)
  void FireDueSchedules();
  void Supervise(JobRecord job);
  [[nodiscard]] absl::StatusOr<pid_t> SpawnWorker(int64_t job_id);

  const JobRunnerOptions options_;
  std::unique_ptr<JobStore> store_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool shutting_down_ = false;                         // GUARDED_BY(mu_)
  absl::Status store_error_;                           // GUARDED_BY(mu_)
  std::chrono::steady_clock::time_point retry_after_;  // GUARDED_BY(mu_)
  std::map<int64_t, Running> running_;                 // GUARDED_BY(mu_), by job id
  std::map<int64_t, std::thread> supervisors_;         // GUARDED_BY(mu_), by job id
  std::vector<int64_t> finished_;                      // GUARDED_BY(mu_), to join
  std::map<int64_t, int64_t> next_fire_;               // GUARDED_BY(mu_), by schedule id
  std::thread control_;
};

}  // namespace tda
