#include "jobs/job_worker.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "jobs/job_context.h"
#include "jobs/job_kinds.h"
#include "jobs/job_outputs.h"
#include "jobs/job_store.h"

namespace tda {

namespace {

std::atomic<bool> cancel_signalled{false};

void OnSigterm(int) { cancel_signalled.store(true); }

class WorkerContext : public JobContext {
 public:
  // `spec` is the job's spec with its paths resolved (ResolveSpecPaths).
  WorkerContext(JobStore* store, const JobRecord& job, const JobKind* kind, const JobRoots& roots,
                const std::string& spec)
      : store_(store),
        job_(job),
        kind_(kind),
        roots_(roots),
        registry_(roots),
        spec_(nlohmann::json::parse(spec)),
        start_(Clock::now()) {}

  int64_t job_id() const override { return job_.id; }
  int64_t attempt() const override { return job_.attempt; }
  bool cancelled() const override { return cancel_signalled.load(); }
  void RemoveOnCancel(const std::string& path) override { cleanup_.push_back(path); }

  absl::StatusOr<std::string> PrepareOutput(const std::string& field) override {
    ASSIGN_OR_RETURN(const JobSpecField* f, OutputField(field));
    const std::string path = spec_[field].get<std::string>();
    ASSIGN_OR_RETURN(const std::string now, ResolveJobPath(roots_, field, path, f->path));
    if (now != path) {
      return absl::PermissionDeniedError(absl::StrCat(
          "job path ", field, " '", path, "' now resolves to '", now,
          "' (a symlink changed since the job was submitted); resubmit it with a real path"));
    }
    RETURN_IF_ERROR(registry_.CheckReplaceable(field, path, f->path, Claim()));
    return path;
  }

  absl::Status RecordOutput(const std::string& field) override {
    RETURN_IF_ERROR(OutputField(field).status());
    return registry_.Record(spec_[field].get<std::string>(), Claim());
  }

  void Log(const std::string& line) override {
    if (absl::Status s = store_->AppendLog(job_.id, line); !s.ok()) {
      std::cerr << "tda-job-worker: job " << job_.id << ": " << s.message() << "\n";
    }
  }

  ProgressFn progress() override {
    return [this](std::string_view stage, int64_t done, int64_t total, std::string_view detail) {
      OnProgress(stage, done, total, detail);
    };
  }

  // Removes registered temporary paths, records `cancelled` and ends the process.
  [[noreturn]] void StopCancelled() {
    for (const std::string& path : cleanup_) {
      std::error_code error;
      std::filesystem::remove_all(path, error);
    }
    Log(absl::StrCat("cancelled", stage_.empty() ? "" : " during stage " + stage_));
    absl::Status s = store_->Finish(job_.id, JobState::kCancelled, "cancelled", "");
    std::_Exit(s.ok() ? kWorkerCancelledExitCode : 1);
  }

 private:
  using Clock = std::chrono::steady_clock;

  OutputClaim Claim() const {
    return {job_.id, job_.schedule_id, spec_.value("overwrite", false)};
  }

  absl::StatusOr<const JobSpecField*> OutputField(const std::string& field) const {
    for (const JobSpecField& f : kind_->fields) {
      if (f.name == field && IsOutput(f.path) && spec_.contains(field) &&
          !spec_[field].get<std::string>().empty()) {
        return &f;
      }
    }
    return absl::InternalError(
        absl::StrCat(kind_->name, " has no output '", field, "' set in its spec"));
  }

  void OnProgress(std::string_view stage, int64_t done, int64_t total, std::string_view detail) {
    if (cancelled()) StopCancelled();
    const auto now = Clock::now();
    const bool new_stage = stage != stage_;
    if (new_stage) {
      stage_ = std::string(stage);
      Log(absl::StrCat("stage ", stage_));
    }
    const double stage_fraction =
        total > 0 ? std::min(1.0, static_cast<double>(done) / static_cast<double>(total)) : 0.0;
    double fraction = stage_fraction;
    const std::vector<std::string>& stages = kind_->stages;
    for (size_t i = 0; i < stages.size(); ++i) {
      if (stages[i] == stage_) {
        fraction = (static_cast<double>(i) + stage_fraction) / static_cast<double>(stages.size());
      }
    }
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double eta = fraction > 0.01 ? elapsed * (1 - fraction) / fraction : -1;
    if (new_stage || now - last_write_ >= std::chrono::duration<double>(kProgressIntervalSeconds)) {
      last_write_ = now;
      if (absl::Status s = store_->UpdateProgress(job_.id, fraction, stage_, eta); !s.ok()) {
        std::cerr << "tda-job-worker: job " << job_.id << ": " << s.message() << "\n";
      }
    }
    if (now - last_log_ >= std::chrono::duration<double>(kLogIntervalSeconds)) {
      last_log_ = now;
      Log(absl::StrFormat("%s %d/%d%s%s", stage_, done, total, detail.empty() ? "" : " ",
                          std::string(detail)));
    }
  }

  JobStore* store_;
  JobRecord job_;
  const JobKind* kind_;
  const JobRoots roots_;
  const OutputRegistry registry_;
  const nlohmann::json spec_;
  Clock::time_point start_, last_write_{}, last_log_{};
  std::string stage_;
  std::vector<std::string> cleanup_;
};

// The job's spec with its paths resolved again and its outputs checked, as this job.
absl::StatusOr<std::string> CheckedSpec(const JobRecord& job, const JobKind& kind,
                                        const JobRoots& roots) {
  ASSIGN_OR_RETURN(const std::string normalized, NormalizeSpec(kind, job.spec));
  ASSIGN_OR_RETURN(std::string spec, ResolveSpecPaths(kind, normalized, roots));
  RETURN_IF_ERROR(CheckSpecOutputs(kind, spec, OutputRegistry(roots), job.id, job.schedule_id));
  return spec;
}

}  // namespace

int RunJobWorker(const std::string& db_path, int64_t job_id, const JobRoots& roots) {
  struct sigaction action {};
  action.sa_handler = OnSigterm;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);

  absl::StatusOr<std::unique_ptr<JobStore>> store = JobStore::Open(db_path);
  if (!store.ok()) {
    std::cerr << "tda-job-worker: " << store.status().message() << "\n";
    return 1;
  }
  absl::StatusOr<JobRecord> job = (*store)->Get(job_id);
  if (!job.ok() || job->state != JobState::kRunning) {
    std::cerr << "tda-job-worker: job " << job_id << " is not running: "
              << (job.ok() ? JobStateName(job->state) : job.status().message()) << "\n";
    return 1;
  }
  absl::StatusOr<const JobKind*> kind = FindJobKind(job->kind);
  if (!kind.ok()) {
    return (*store)->Finish(job_id, JobState::kFailed, std::string(kind.status().message()), "")
                   .ok()
               ? 0
               : 1;
  }
  absl::StatusOr<std::string> spec = CheckedSpec(*job, **kind, roots);
  if (!spec.ok()) {
    const std::string error = spec.status().ToString();
    (*store)->AppendLog(job_id, "refused: " + error).IgnoreError();
    return (*store)->Finish(job_id, JobState::kFailed, error, "").ok() ? 0 : 1;
  }
  WorkerContext context(store->get(), *job, *kind, roots, *spec);
  context.Log(absl::StrCat("started ", job->kind, " (attempt ", job->attempt, ", worker pid ",
                           getpid(), ")"));
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<std::string> result = RunJob(job->kind, *spec, context);
  if (absl::IsCancelled(result.status()) || context.cancelled()) context.StopCancelled();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  absl::Status recorded;
  if (result.ok()) {
    context.Log(absl::StrFormat("succeeded in %.1f s", seconds));
    recorded = (*store)->Finish(job_id, JobState::kSucceeded, "", *result);
  } else {
    const std::string error = result.status().ToString();
    context.Log(absl::StrFormat("failed after %.1f s: %s", seconds, error));
    recorded = (*store)->Finish(job_id, JobState::kFailed, error, "");
  }
  if (!recorded.ok()) {
    std::cerr << "tda-job-worker: job " << job_id << ": " << recorded.message() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace tda
