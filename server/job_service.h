// tda.v1.JobService over a JobRunner (src/jobs): a thin adapter in the manner of
// AttributionServiceImpl. Each method translates the request, calls the runner or its store,
// and translates the reply; errors become gRPC codes through ToGrpcStatus. WatchJob polls the
// job store (every kWatchPollSeconds) and streams a JobUpdate whenever the job or its log
// changes, ending after the job's final state.
//
// Callers (server/caller.h, caller_role.h): SubmitJob records the caller as the job's
// submitter. Readers see their own jobs and schedules' jobs (another's is NOT_FOUND), with
// server paths cut to their last component (server/path_hiding.h); operators and admins see
// all. Operators cancel their own and schedules' jobs, admins any (else PERMISSION_DENIED).
//
// Thread-safety: all methods may run concurrently (JobRunner and JobStore are thread-safe).
#pragma once

#include "jobs/job_runner.h"
#include "tda/v1/jobs.grpc.pb.h"

namespace tda {

inline constexpr double kWatchPollSeconds = 0.2;

// Engine record -> API message (shared with tests).
v1::Job JobToProto(const JobRecord& job);

class JobServiceImpl final : public v1::JobService::Service {
 public:
  explicit JobServiceImpl(JobRunner* runner) : runner_(runner) {}

  grpc::Status SubmitJob(grpc::ServerContext* context, const v1::SubmitJobRequest* request,
                         v1::Job* response) override;
  grpc::Status GetJob(grpc::ServerContext* context, const v1::GetJobRequest* request,
                      v1::Job* response) override;
  grpc::Status ListJobs(grpc::ServerContext* context, const v1::ListJobsRequest* request,
                        v1::ListJobsResponse* response) override;
  grpc::Status CancelJob(grpc::ServerContext* context, const v1::CancelJobRequest* request,
                         v1::Job* response) override;
  grpc::Status WatchJob(grpc::ServerContext* context, const v1::WatchJobRequest* request,
                        grpc::ServerWriter<v1::JobUpdate>* writer) override;
  grpc::Status CreateSchedule(grpc::ServerContext* context,
                              const v1::CreateScheduleRequest* request,
                              v1::Schedule* response) override;
  grpc::Status ListSchedules(grpc::ServerContext* context, const v1::ListSchedulesRequest* request,
                             v1::ListSchedulesResponse* response) override;
  grpc::Status DeleteSchedule(grpc::ServerContext* context,
                              const v1::DeleteScheduleRequest* request,
                              v1::DeleteScheduleResponse* response) override;

 private:
  JobRunner* runner_;
};

}  // namespace tda
