// What a job sees while it runs (in a tda-job-worker process): progress reporting, a log,
// cooperative cancellation, and its checked outputs. Implemented by the worker over the job
// store (job_worker.cc).
//
// Cancellation is cooperative: a job calls cancelled() between units of work and returns
// absl::CancelledError; inside long engine calls (BuildIndex, training) the progress callback
// polls the same flag and, when it is set, stops the worker process after removing the paths
// registered with RemoveOnCancel (the OS frees everything else).
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "common/progress.h"

namespace tda {

class JobContext {
 public:
  virtual ~JobContext() = default;
  virtual int64_t job_id() const = 0;
  virtual int64_t attempt() const = 0;
  // The callback to hand to src/ (progress persisted at a bounded rate).
  virtual ProgressFn progress() = 0;
  virtual void Log(const std::string& line) = 0;
  virtual bool cancelled() const = 0;
  // A file or directory (e.g. a temporary output) to delete when the job is cancelled.
  virtual void RemoveOnCancel(const std::string& path) = 0;
  // The path of output field `field` of the job's spec, checked again right before the job
  // writes it: still inside the roots as at submission (job_paths.h; kPermissionDenied when a
  // symlink now leads elsewhere) and replaceable by this job (job_outputs.h).
  [[nodiscard]] virtual absl::StatusOr<std::string> PrepareOutput(const std::string& field) = 0;
  // Records that the job has just written output field `field` (the output registry), so that
  // a later attempt of this job or run of its schedule may replace it.
  [[nodiscard]] virtual absl::Status RecordOutput(const std::string& field) = 0;
};

}  // namespace tda
