// The kinds of jobs tda runs, their specs, and how each runs.
//
// A spec is a JSON object; every kind declares its fields (name, type, default, help) once
// here, and both the server (validating a submission) and the CLI (generating
// `tda jobs submit KIND --field value` flags) use that declaration.
//
//   build-index      BuildIndex of a trained model (mlp or gpt) into out_dir. Written into a
//                    fresh temporary directory "<out_dir>.job<ID>-tmp" and renamed over out_dir
//                    when complete, so out_dir holds either the old index or the new one. Not
//                    resumable by shard (the writer has no resume point yet): after a crash the
//                    job restarts from scratch into a fresh temporary directory.
//   batch-attribute  a JSONL file of queries in ({"sample_id": "fashion-mnist/test/3"} or
//                    {"raw": {"features": [...]}, "label": 2}, optionally "label"), a JSONL file
//                    of results out (one QueryResult per line, the field names of tda.v1's JSON
//                    mapping), and an .npy of score vectors (queries x rows, float32) when
//                    scores_out is set. Outputs are written atomically; restartable.
//   evaluate-lds     the linear datamodeling score of attribution methods on Fashion-MNIST
//                    (the `tda eval lds` protocol of src/ablation/lds.h, 28x28 images): trains
//                    a model, retrains it on random subsets, scores each method; a JSON result
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

namespace tda {

struct JobSpecField {
  enum class Type { kString, kInt, kDouble };
  std::string name;  // JSON key (snake_case); the CLI flag uses dashes
  Type type = Type::kString;
  std::string default_value;  // as JSON text; empty = required
  std::string help;
  bool path = false;  // a file or directory (the CLI makes it absolute)
};

struct JobKind {
  std::string name;  // "build-index", ...
  std::string summary;
  std::vector<JobSpecField> fields;
  std::vector<std::string> stages;  // the progress stages in order, to compute an overall fraction
  bool restartable = false;         // re-run from scratch after a crash (else: interrupted)
};

const std::vector<JobKind>& JobKinds();
// kInvalidArgument listing the known kinds.
absl::StatusOr<const JobKind*> FindJobKind(const std::string& name);

// Checks a spec (a JSON object) against its kind: unknown fields, wrong types and missing
// required fields are kInvalidArgument naming the field. Returns the spec with every default
// filled in (compact JSON), which is what the store keeps.
absl::StatusOr<std::string> NormalizeJobSpec(const std::string& kind, const std::string& spec_json);

// Runs one job to completion; returns the path of its result. kCancelled when cancelled.
absl::StatusOr<std::string> RunJob(const std::string& kind, const std::string& spec_json,
                                   JobContext& context);

}  // namespace tda
