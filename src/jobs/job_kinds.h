// The kinds of jobs tda runs, their specs, and how each runs.
//
// A spec is a JSON object; every kind declares its fields (name, type, default, help, valid
// range, whether it is an input or output path; job_spec.h) once here, and both the server
// (validating a submission) and the CLI (generating `tda jobs submit KIND --field value` flags
// and their --help) use that declaration.
//
// Paths: every path field is resolved against the server's roots and refused with
// kPermissionDenied outside them (job_paths.h); an existing output is replaced only when it is
// the job's own or, with `overwrite: true`, a tda index or tda job output (job_outputs.h);
// anything else is refused (kFailedPrecondition / kAlreadyExists) and left untouched. The
// server checks at submission, the worker before the job starts and again right before each
// write.
//
//   build-index      BuildIndex of a trained model (mlp or gpt) into out_dir. Written into a
//                    fresh temporary directory "<out_dir>.job<ID>-tmp" and renamed over out_dir
//                    when complete (out_dir may be absent, empty, this job's earlier index, or
//                    with overwrite a tda index; never another directory), so out_dir holds
//                    either the old index or the new one. Not
//                    resumable by shard (the writer has no resume point yet): after a crash the
//                    job restarts from scratch into a fresh temporary directory.
//   batch-attribute  a JSONL file of queries in ({"sample_id": "fashion-mnist/test/3"} or
//                    {"raw": {"features": [...]}, "label": 2}, optionally "label"), a JSONL file
//                    of results out (one QueryResult per line, the field names of tda.v1's JSON
//                    mapping), and an .npy of score vectors (queries x rows, float32) when
//                    scores_out is set. Outputs are written atomically; restartable.
//   evaluate-lds     the linear datamodeling score of attribution methods on Fashion-MNIST
//                    (the `tda eval lds` protocol, ops/lds_experiment.h; images downsampled to
//                    `side`): trains a model, retrains it on random subsets, scores each method;
//                    a JSON result
//                    written atomically to `out`. Not restarted after a crash (minutes of
//                    retraining; marked interrupted, resubmit it).
//   sleep            waits `seconds`, reporting progress every 0.1 s: a diagnostic job for
//                    exercising the runner and schedules. Restartable.
//
// Thread-compatible: RunJob runs one job on the calling thread.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "jobs/job_context.h"
#include "jobs/job_spec.h"

namespace tda {

const std::vector<JobKind>& JobKinds();
// kInvalidArgument listing the known kinds.
[[nodiscard]] absl::StatusOr<const JobKind*> FindJobKind(const std::string& name);

// NormalizeSpec (job_spec.h) of the kind named `kind`: defaults filled in, types and ranges
// checked (kInvalidArgument naming the field, its value and its range). Paths are not
// resolved here (ResolveSpecPaths in job_paths.h does, with the server's roots).
[[nodiscard]] absl::StatusOr<std::string> NormalizeJobSpec(const std::string& kind, const std::string& spec_json);

// Runs one job to completion; returns the path of its result. kCancelled when cancelled. The
// spec's paths must already be resolved (ResolveSpecPaths); each output is checked again with
// JobContext::PrepareOutput right before it is written and recorded with RecordOutput after.
[[nodiscard]] absl::StatusOr<std::string> RunJob(const std::string& kind, const std::string& spec_json,
                                   JobContext& context);

}  // namespace tda
