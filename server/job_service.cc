#include "server/job_service.h"

#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "api/status_conversion.h"
#include "server/caller.h"
#include "server/caller_role.h"
#include "server/path_hiding.h"

namespace tda {

namespace {

constexpr int64_t kDefaultListLimit = 50;
constexpr int64_t kMaxListLimit = 1000;
constexpr int64_t kRecentRuns = 20;

v1::JobState StateToProto(JobState state) {
  switch (state) {
    case JobState::kQueued:
      return v1::JOB_STATE_QUEUED;
    case JobState::kRunning:
      return v1::JOB_STATE_RUNNING;
    case JobState::kSucceeded:
      return v1::JOB_STATE_SUCCEEDED;
    case JobState::kFailed:
      return v1::JOB_STATE_FAILED;
    case JobState::kCancelled:
      return v1::JOB_STATE_CANCELLED;
    case JobState::kInterrupted:
      return v1::JOB_STATE_INTERRUPTED;
  }
  return v1::JOB_STATE_UNSPECIFIED;
}

void ScheduleToProto(const ScheduleRecord& s, v1::Schedule* out) {
  out->set_id(s.id);
  out->set_name(s.name);
  out->set_cron(s.cron);
  out->set_kind(s.kind);
  out->set_spec_json(s.spec);
  out->set_created_at(s.created_at);
}

// Readers see their own jobs and the jobs of schedules; operators and admins see every job.
bool MaySee(const grpc::ServerContext& context, const JobRecord& job) {
  return RoleAtLeast(CallerRole(context), Role::kOperator) || job.schedule_id != 0 ||
         job.submitter == CallerName(context);
}

// Admins cancel any job; operators their own and schedules' jobs.
bool MayCancel(const grpc::ServerContext& context, const JobRecord& job) {
  return CallerRole(context) == Role::kAdmin || job.schedule_id != 0 ||
         job.submitter == CallerName(context);
}

// The job as `context`'s caller may see it (paths hidden from readers).
v1::Job VisibleJob(const grpc::ServerContext& context, const JobRecord& job) {
  v1::Job out = JobToProto(job);
  HidePaths(CallerRole(context), &out);
  return out;
}

// The job, or NOT_FOUND when the caller may not see it (its existence is not revealed).
[[nodiscard]] absl::StatusOr<JobRecord> GetVisibleJob(JobRunner* runner,
                                                      const grpc::ServerContext& context,
                                                      int64_t id) {
  absl::StatusOr<JobRecord> job = runner->store().Get(id);
  if (job.ok() && !MaySee(context, *job)) {
    return absl::NotFoundError(absl::StrCat("no job with id ", id));
  }
  return job;
}

grpc::Status Reply(const grpc::ServerContext& context, const absl::StatusOr<JobRecord>& job,
                   v1::Job* response) {
  if (!job.ok()) return ToGrpcStatus(job.status());
  *response = VisibleJob(context, *job);
  return grpc::Status::OK;
}

}  // namespace

v1::Job JobToProto(const JobRecord& job) {
  v1::Job out;
  out.set_id(job.id);
  out.set_kind(job.kind);
  out.set_spec_json(job.spec);
  out.set_state(StateToProto(job.state));
  out.set_progress(job.progress);
  out.set_stage(job.stage);
  out.set_eta_seconds(job.eta_seconds);
  out.set_created_at(job.created_at);
  out.set_started_at(job.started_at);
  out.set_finished_at(job.finished_at);
  out.set_error(job.error);
  out.set_result_path(job.result_path);
  out.set_attempt(job.attempt);
  out.set_cancel_requested(job.cancel_requested);
  out.set_schedule_id(job.schedule_id);
  out.set_submitter(job.submitter);
  return out;
}

grpc::Status JobServiceImpl::SubmitJob(grpc::ServerContext* context,
                                       const v1::SubmitJobRequest* request, v1::Job* response) {
  return Reply(*context,
               runner_->Submit(request->kind(), request->spec_json(), CallerName(*context)),
               response);
}

grpc::Status JobServiceImpl::GetJob(grpc::ServerContext* context, const v1::GetJobRequest* request,
                                    v1::Job* response) {
  return Reply(*context, GetVisibleJob(runner_, *context, request->id()), response);
}

grpc::Status JobServiceImpl::ListJobs(grpc::ServerContext* context,
                                      const v1::ListJobsRequest* request,
                                      v1::ListJobsResponse* response) {
  const int64_t limit = request->limit() == 0 ? kDefaultListLimit : request->limit();
  if (limit < 0 || limit > kMaxListLimit) {
    return ToGrpcStatus(absl::InvalidArgumentError(
        absl::StrCat("limit must be in [1, ", kMaxListLimit, "], got ", limit)));
  }
  std::optional<JobState> state;
  if (request->state() != v1::JOB_STATE_UNSPECIFIED) {
    for (JobState s : {JobState::kQueued, JobState::kRunning, JobState::kSucceeded,
                       JobState::kFailed, JobState::kCancelled, JobState::kInterrupted}) {
      if (StateToProto(s) == request->state()) state = s;
    }
    if (!state) {
      return ToGrpcStatus(absl::InvalidArgumentError(
          absl::StrCat("unknown job state ", static_cast<int>(request->state()))));
    }
  }
  // Readers' jobs are picked from the newest kMaxListLimit the server holds.
  const bool sees_all = RoleAtLeast(CallerRole(*context), Role::kOperator);
  absl::StatusOr<std::vector<JobRecord>> jobs =
      runner_->store().List(state, sees_all ? limit : kMaxListLimit);
  if (!jobs.ok()) return ToGrpcStatus(jobs.status());
  for (const JobRecord& job : *jobs) {
    if (response->jobs_size() == limit) break;
    if (MaySee(*context, job)) *response->add_jobs() = VisibleJob(*context, job);
  }
  return grpc::Status::OK;
}

grpc::Status JobServiceImpl::CancelJob(grpc::ServerContext* context,
                                       const v1::CancelJobRequest* request, v1::Job* response) {
  absl::StatusOr<JobRecord> job = runner_->store().Get(request->id());
  if (!job.ok()) return ToGrpcStatus(job.status());
  if (!MayCancel(*context, *job)) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        absl::StrCat("job ", job->id, " was submitted by '", job->submitter,
                                     "'; cancelling another's job needs role admin"));
  }
  return Reply(*context, runner_->Cancel(request->id()), response);
}

grpc::Status JobServiceImpl::WatchJob(grpc::ServerContext* context,
                                      const v1::WatchJobRequest* request,
                                      grpc::ServerWriter<v1::JobUpdate>* writer) {
  int64_t last_seq = 0;
  std::string last_sent;
  while (!context->IsCancelled()) {
    absl::StatusOr<JobRecord> job = GetVisibleJob(runner_, *context, request->id());
    if (!job.ok()) return ToGrpcStatus(job.status());
    absl::StatusOr<std::vector<JobLogLine>> lines =
        runner_->store().LogSince(request->id(), last_seq, 1000);
    if (!lines.ok()) return ToGrpcStatus(lines.status());
    v1::JobUpdate update;
    *update.mutable_job() = VisibleJob(*context, *job);
    const std::string job_bytes = update.job().SerializeAsString();
    for (const JobLogLine& l : *lines) {
      v1::LogLine* line = update.add_new_log_lines();
      line->set_seq(l.seq);
      line->set_time(l.time);
      line->set_line(l.line);
      last_seq = l.seq;
    }
    if (job_bytes != last_sent || update.new_log_lines_size() > 0) {
      if (!writer->Write(update)) return grpc::Status::OK;  // the client went away
      last_sent = job_bytes;
    }
    // The final state is sent once its log is complete (the finishing line precedes it).
    if (IsTerminal(job->state) && lines->size() < 1000) return grpc::Status::OK;
    std::this_thread::sleep_for(std::chrono::duration<double>(kWatchPollSeconds));
  }
  return grpc::Status(grpc::StatusCode::CANCELLED, "watch cancelled by the client");
}

grpc::Status JobServiceImpl::CreateSchedule(grpc::ServerContext*,
                                            const v1::CreateScheduleRequest* request,
                                            v1::Schedule* response) {
  absl::StatusOr<ScheduleRecord> schedule = runner_->CreateSchedule(
      request->name(), request->cron(), request->kind(), request->spec_json());
  if (!schedule.ok()) return ToGrpcStatus(schedule.status());
  ScheduleToProto(*schedule, response);
  return grpc::Status::OK;
}

grpc::Status JobServiceImpl::ListSchedules(grpc::ServerContext*, const v1::ListSchedulesRequest*,
                                           v1::ListSchedulesResponse* response) {
  absl::StatusOr<std::vector<ScheduleRecord>> schedules = runner_->store().ListSchedules();
  if (!schedules.ok()) return ToGrpcStatus(schedules.status());
  for (const ScheduleRecord& s : *schedules) {
    v1::Schedule* out = response->add_schedules();
    ScheduleToProto(s, out);
    out->set_next_fire_time(static_cast<double>(runner_->NextFireTime(s.id)));
    absl::StatusOr<std::vector<ScheduleRun>> runs =
        runner_->store().ScheduleHistory(s.id, kRecentRuns);
    if (!runs.ok()) return ToGrpcStatus(runs.status());
    for (const ScheduleRun& r : *runs) {
      v1::ScheduleRun* run = out->add_recent_runs();
      run->set_fire_time(r.fire_time);
      run->set_job_id(r.job_id);
      run->set_skipped_reason(r.skipped_reason);
    }
  }
  return grpc::Status::OK;
}

grpc::Status JobServiceImpl::DeleteSchedule(grpc::ServerContext*,
                                            const v1::DeleteScheduleRequest* request,
                                            v1::DeleteScheduleResponse*) {
  return ToGrpcStatus(runner_->DeleteSchedule(request->id()));
}

}  // namespace tda
