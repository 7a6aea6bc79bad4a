#include "jobs/job_runner.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "jobs/cron.h"
#include "jobs/job_kinds.h"
#include "jobs/job_outputs.h"

extern char** environ;

namespace tda {

namespace {

constexpr double kStoreErrorRetrySeconds = 2.0;

std::string DescribeExit(int status) {
  if (WIFEXITED(status)) return absl::StrCat("worker exited with code ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return absl::StrCat("worker killed by signal ", WTERMSIG(status), " (",
                        strsignal(WTERMSIG(status)), ")");
  }
  return "worker ended";
}

}  // namespace

absl::StatusOr<std::unique_ptr<JobRunner>> JobRunner::Start(const JobRunnerOptions& options) {
  if (options.max_running < 1 || options.worker_threads < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("job runner: max_running and worker_threads must be >= 1, got ",
                     options.max_running, " and ", options.worker_threads));
  }
  if (access(options.worker_binary.c_str(), X_OK) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("job worker binary '", options.worker_binary, "' is not executable"));
  }
  JobRunnerOptions resolved = options;
  const JobRoots& roots = options.roots;
  ASSIGN_OR_RETURN(resolved.roots,
                   MakeJobRoots(roots.state_dir.empty()
                                    ? std::filesystem::path(options.db_path).parent_path().string()
                                    : roots.state_dir,
                                roots.data_root, roots.output_root));
  auto runner = std::unique_ptr<JobRunner>(new JobRunner(resolved));
  ASSIGN_OR_RETURN(runner->store_, JobStore::Open(options.db_path));
  RETURN_IF_ERROR(runner->RecoverInterruptedJobs("the server stopped (crash or kill)"));
  runner->control_ = std::thread([r = runner.get()] { r->ControlLoop(); });
  return runner;
}

JobRunner::~JobRunner() { Shutdown(); }

absl::Status JobRunner::RecoverInterruptedJobs(const std::string& why) {
  ASSIGN_OR_RETURN(std::vector<JobRecord> jobs, store_->List(JobState::kRunning, 1 << 20));
  for (const JobRecord& job : jobs) {
    absl::StatusOr<const JobKind*> kind = FindJobKind(job.kind);
    const bool restart = kind.ok() && (*kind)->restartable && job.attempt < options_.max_attempts;
    std::string reason;
    if (restart) {
      reason = absl::StrCat(why, " while attempt ", job.attempt,
                            " was running; requeued to restart from scratch");
    } else if (kind.ok() && (*kind)->restartable) {
      reason = absl::StrCat("interrupted: ", why, " while attempt ", job.attempt,
                            " was running; giving up after ", job.attempt, " attempts");
    } else {
      reason = absl::StrCat("interrupted: ", why, " while attempt ", job.attempt, " was running; ",
                            job.kind, " jobs are not restarted automatically (resubmit it)");
    }
    RETURN_IF_ERROR(store_->Recover(job.id, restart, reason));
    std::cerr << "tda jobs: job " << job.id << ": " << reason << "\n";
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> JobRunner::ValidateSpec(const std::string& kind,
                                                   const std::string& spec_json) const {
  ASSIGN_OR_RETURN(const JobKind* job_kind, FindJobKind(kind));
  ASSIGN_OR_RETURN(const std::string normalized, NormalizeSpec(*job_kind, spec_json));
  ASSIGN_OR_RETURN(std::string spec, ResolveSpecPaths(*job_kind, normalized, options_.roots));
  RETURN_IF_ERROR(CheckSpecOutputs(*job_kind, spec, OutputRegistry(options_.roots), 0, 0));
  return spec;
}

absl::StatusOr<JobRecord> JobRunner::Submit(const std::string& kind, const std::string& spec_json,
                                            const std::string& submitter) {
  ASSIGN_OR_RETURN(const std::string spec, ValidateSpec(kind, spec_json));
  ASSIGN_OR_RETURN(const int64_t id, store_->Submit(kind, spec, submitter,
                                                    options_.max_active_per_submitter));
  wake_.notify_all();
  return store_->Get(id);
}

absl::StatusOr<JobRecord> JobRunner::Cancel(int64_t id) {
  ASSIGN_OR_RETURN(const JobState state, store_->RequestCancel(id));
  if (state == JobState::kRunning) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = running_.find(id);
    if (it != running_.end() && !it->second.cancel) {
      it->second.cancel = true;
      it->second.cancel_at = std::chrono::steady_clock::now();
      if (it->second.pid > 0) kill(it->second.pid, SIGTERM);
    }
  }
  return store_->Get(id);
}

absl::StatusOr<ScheduleRecord> JobRunner::CreateSchedule(const std::string& name,
                                                         const std::string& cron,
                                                         const std::string& kind,
                                                         const std::string& spec_json) {
  if (name.empty()) return absl::InvalidArgumentError("a schedule needs a name");
  RETURN_IF_ERROR(CronSchedule::Parse(cron).status());
  ASSIGN_OR_RETURN(const std::string spec, ValidateSpec(kind, spec_json));
  ASSIGN_OR_RETURN(const int64_t id, store_->CreateSchedule(name, cron, kind, spec));
  ASSIGN_OR_RETURN(std::vector<ScheduleRecord> all, store_->ListSchedules());
  for (ScheduleRecord& s : all) {
    if (s.id == id) return s;
  }
  return absl::InternalError(absl::StrCat("schedule ", id, " vanished after creation"));
}

absl::Status JobRunner::DeleteSchedule(int64_t id) {
  RETURN_IF_ERROR(store_->DeleteSchedule(id));
  std::lock_guard<std::mutex> lock(mu_);
  next_fire_.erase(id);
  return absl::OkStatus();
}

int64_t JobRunner::NextFireTime(int64_t schedule_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = next_fire_.find(schedule_id);
  return it == next_fire_.end() ? 0 : it->second;
}

void JobRunner::ControlLoop() {
  const auto tick = std::chrono::duration<double>(options_.tick_seconds);
  std::unique_lock<std::mutex> lock(mu_);
  while (!shutting_down_) {
    lock.unlock();
    FireDueSchedules();
    lock.lock();
    for (int64_t id : finished_) {
      supervisors_[id].join();
      supervisors_.erase(id);
    }
    finished_.clear();
    MaybeScheduleJobs();
    wake_.wait_for(lock, tick);
  }
}

void JobRunner::MaybeScheduleJobs() {
  const auto now = std::chrono::steady_clock::now();
  while (true) {
    if (shutting_down_) return;                            // no new work while stopping
    if (!store_error_.ok() && now < retry_after_) return;  // the store failed recently
    if (static_cast<int>(running_.size()) >= options_.max_running) return;  // no free slot
    absl::StatusOr<std::optional<JobRecord>> job = store_->ClaimNextQueued();
    if (!job.ok()) {
      store_error_ = job.status();
      retry_after_ = now + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                               std::chrono::duration<double>(kStoreErrorRetrySeconds));
      std::cerr << "tda jobs: cannot claim a job: " << store_error_.message() << "\n";
      return;
    }
    store_error_ = absl::OkStatus();
    if (!job->has_value()) return;  // nothing queued
    const int64_t id = (*job)->id;
    running_[id] = Running{};
    supervisors_[id] = std::thread([this, j = **job] { Supervise(j); });
  }
}

void JobRunner::FireDueSchedules() {
  absl::StatusOr<std::vector<ScheduleRecord>> schedules = store_->ListSchedules();
  if (!schedules.ok()) {
    std::cerr << "tda jobs: cannot list schedules: " << schedules.status().message() << "\n";
    return;
  }
  const double now = NowSeconds();
  const int64_t now_second = static_cast<int64_t>(std::floor(now));
  std::map<int64_t, int64_t> next;
  {
    std::lock_guard<std::mutex> lock(mu_);
    next.swap(next_fire_);
  }
  std::map<int64_t, int64_t> updated;
  for (const ScheduleRecord& s : *schedules) {
    absl::StatusOr<CronSchedule> cron = CronSchedule::Parse(s.cron);
    if (!cron.ok()) continue;  // validated on creation; a hand-edited row is ignored
    auto it = next.find(s.id);
    int64_t due = it != next.end() ? it->second : 0;
    if (due == 0) {
      // First sight (start-up or a new schedule): fire at the next time from now on.
      absl::StatusOr<int64_t> first = cron->Next(now_second);
      if (!first.ok()) continue;
      due = *first;
    }
    if (static_cast<double>(due) <= now) {
      absl::StatusOr<int64_t> job = store_->FireSchedule(s.id, static_cast<double>(due));
      if (!job.ok()) {
        std::cerr << "tda jobs: schedule " << s.name << ": " << job.status().message() << "\n";
        updated[s.id] = due;  // retry at the next tick
        continue;
      }
      std::cerr << "tda jobs: schedule " << s.name << " fired for " << due << ": "
                << (*job > 0 ? absl::StrCat("job ", *job) : std::string("skipped")) << "\n";
      absl::StatusOr<int64_t> following = cron->Next(std::max(due, now_second));
      if (!following.ok()) continue;
      due = *following;
    }
    updated[s.id] = due;
  }
  std::lock_guard<std::mutex> lock(mu_);
  // A schedule deleted meanwhile is dropped by the next listing.
  next_fire_.swap(updated);
  wake_.notify_all();
}

absl::StatusOr<pid_t> JobRunner::SpawnWorker(int64_t job_id) {
  // Everything the child needs is prepared before fork: after fork only async-signal-safe
  // calls are allowed in a multithreaded process.
  std::vector<std::string> args = {options_.worker_binary,
                                   "--db",
                                   options_.db_path,
                                   "--job",
                                   std::to_string(job_id),
                                   "--state-dir",
                                   options_.roots.state_dir,
                                   "--data-root",
                                   options_.roots.data_root,
                                   "--output-root",
                                   options_.roots.output_root};
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "OMP_NUM_THREADS=", 16) != 0) env.emplace_back(*e);
  }
  env.push_back(absl::StrCat("OMP_NUM_THREADS=", options_.worker_threads));
  std::vector<char*> argv, envp;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  const pid_t parent = getpid();
  const int nice_value = options_.worker_nice;

  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // die with the server
    if (getppid() != parent) _exit(127);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);  // tda-server blocks SIGTERM in every thread
    if (nice_value != 0) setpriority(PRIO_PROCESS, 0, nice_value);
    syscall(SYS_close_range, 3U, ~0U, 0U);  // the server's sockets and files stay with it
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  return pid;
}

void JobRunner::Supervise(JobRecord job) {
  absl::StatusOr<pid_t> pid = SpawnWorker(job.id);
  if (!pid.ok()) {
    store_->Finish(job.id, JobState::kFailed, std::string(pid.status().message()), "")
        .IgnoreError();
  } else {
    {
      std::lock_guard<std::mutex> lock(mu_);
      Running& r = running_[job.id];
      r.pid = *pid;
      if (shutting_down_) kill(r.pid, SIGKILL);
      if (r.cancel) kill(r.pid, SIGTERM);
    }
    int status = 0;
    const auto grace = std::chrono::duration<double>(options_.cancel_grace_seconds);
    while (true) {
      const pid_t done = waitpid(*pid, &status, WNOHANG);
      if (done == *pid || (done < 0 && errno != EINTR)) break;
      {
        std::lock_guard<std::mutex> lock(mu_);
        Running& r = running_[job.id];
        if (r.cancel && !r.killed && std::chrono::steady_clock::now() - r.cancel_at > grace) {
          kill(r.pid, SIGKILL);
          r.killed = true;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    // The worker records its own outcome; a job still `running` means it died first.
    absl::StatusOr<JobRecord> after = store_->Get(job.id);
    bool stopping = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping = shutting_down_;
    }
    if (after.ok() && after->state == JobState::kRunning && !stopping) {
      const std::string how = DescribeExit(status);
      store_->AppendLog(job.id, how).IgnoreError();
      if (after->cancel_requested) {
        store_->Finish(job.id, JobState::kCancelled, absl::StrCat("cancelled (", how, ")"), "")
            .IgnoreError();
      } else {
        store_->Finish(job.id, JobState::kFailed, how, "").IgnoreError();
      }
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  running_.erase(job.id);
  finished_.push_back(job.id);
  wake_.notify_all();
}

void JobRunner::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shutting_down_) return;
    shutting_down_ = true;
    for (auto& [id, r] : running_) {
      if (r.pid > 0) kill(r.pid, SIGKILL);
    }
  }
  wake_.notify_all();
  if (control_.joinable()) control_.join();
  std::map<int64_t, std::thread> supervisors;
  {
    std::lock_guard<std::mutex> lock(mu_);
    supervisors.swap(supervisors_);
  }
  for (auto& [id, t] : supervisors) t.join();
  absl::Status s = RecoverInterruptedJobs("the server was shut down");
  if (!s.ok()) std::cerr << "tda jobs: " << s.message() << "\n";
}

}  // namespace tda
