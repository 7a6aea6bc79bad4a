// The body of a tda-job-worker process: runs one claimed job (state running) from the job
// store and records its outcome. The server's JobRunner starts one worker process per running
// job, so a job's memory, threads and open files are released when it ends or is cancelled,
// and a crashing job cannot take the server down.
//
// Progress: fraction (over the kind's stages), stage and ETA are written to the store at most
// every kProgressInterval (and on every stage change); log lines on each stage change and at
// most every kLogInterval with the progress detail.
//
// Paths: see RunJobWorker.
//
// Cancellation: SIGTERM sets a flag. Jobs poll it between units of work (returning
// kCancelled) and the progress callback polls it inside engine calls; either way the worker
// removes the job's registered temporary paths, records `cancelled` and exits.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "jobs/job_paths.h"

namespace tda {

inline constexpr double kProgressIntervalSeconds = 0.5;
inline constexpr double kLogIntervalSeconds = 5.0;
// Exit code of a worker that stopped because it was cancelled (the job is recorded as such).
inline constexpr int kWorkerCancelledExitCode = 3;

// Runs job `job_id`, which must be running. Before the job starts, its spec's paths are
// resolved again against `roots` (ResolveSpecPaths: a symlink swapped in since submission is
// refused with kPermissionDenied) and its outputs checked (CheckSpecOutputs, as this job and
// its schedule); each output is checked once more right before it is written
// (JobContext::PrepareOutput) and recorded in the output registry after (RecordOutput). A
// refusal fails the job with the reason. Returns the process exit code: 0 when the job's
// outcome (succeeded, failed or cancelled) was recorded, 1 when it could not be.
int RunJobWorker(const std::string& db_path, int64_t job_id, const JobRoots& roots);

}  // namespace tda
