// Which existing outputs a job may replace: a job never deletes or replaces anything that is
// not its own output.
//
// Ownership is proved by a registry of the outputs jobs wrote, kept in the state directory
// ("<state-dir>/job-outputs/", one small JSON file per output path, named by the XXH3 of the
// path and written atomically): the path, a fingerprint of what was written, the job id and
// its schedule id. An entry counts only while the fingerprint still matches what is on disk,
// so a file a user edited or put there after the job is not the job's any more. Fingerprints:
//   file        XXH3 of its bytes;
//   tda index   XXH3 of its manifest.json (which holds every data file's checksum);
//   directory   XXH3 over its regular files' relative paths and contents (model directories,
//               a few MB).
// A registry rather than recognising tda's formats by content: a JSONL file that merely looks
// like tda results could be someone's hand-made data, while a matching registry entry proves
// that tda wrote exactly these bytes.
//
// When output `path` exists, the job may write it only when
//   - it is an empty directory (a directory output: nothing is lost), or
//   - it has a matching registry entry of the same job (an earlier attempt) or of the same
//     schedule (an earlier run), or
//   - the spec says overwrite: true and it is a registered tda output (matching entry) or a
//     valid tda index (manifest.json parses and validates).
// Refusals: kAlreadyExists for a tda output or index that overwrite: true would replace;
// kFailedPrecondition for anything else (a foreign file or a non-index directory, of the wrong
// type, or changed since tda wrote it), which no spec can replace. Both name the path and say
// what to do. Temporary paths a job derives from its output (e.g. "<out>.job<ID>-tmp") are its
// own and are not checked here.
//
// Thread-compatible; several processes may use the same registry directory (last write wins
// per path, each entry written atomically).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "jobs/job_context.h"
#include "jobs/job_paths.h"
#include "jobs/job_spec.h"

namespace tda {

// Who wants to write an output.
struct OutputClaim {
  int64_t job_id = 0;       // 0: a submission not stored yet
  int64_t schedule_id = 0;  // 0: not fired by a schedule
  bool overwrite = false;   // the spec's `overwrite`
};

class OutputRegistry {
 public:
  explicit OutputRegistry(const JobRoots& roots);  // "<state_dir>/job-outputs"

  // OK when the claimant may write `path` (field `field`, a resolved output path), as above.
  [[nodiscard]] absl::Status CheckReplaceable(const std::string& field, const std::string& path,
                                              PathRole role, const OutputClaim& claim) const;
  // Records that the claimant has just written `path` (which must exist).
  [[nodiscard]] absl::Status Record(const std::string& path, const OutputClaim& claim) const;

 private:
  std::string EntryPath(const std::string& path) const;
  std::string dir_;
};

// CheckReplaceable for every non-empty output field of a normalised, resolved spec of `kind`,
// with the spec's `overwrite`.
[[nodiscard]] absl::Status CheckSpecOutputs(const JobKind& kind, const std::string& spec_json,
                                            const OutputRegistry& registry, int64_t job_id,
                                            int64_t schedule_id);

// One output of a running job: context.PrepareOutput(field), then `write` of the checked path,
// then context.RecordOutput(field).
[[nodiscard]] absl::Status WriteJobOutput(
    JobContext& context, const std::string& field,
    const std::function<absl::Status(const std::string&)>& write);

// Whether `dir` holds a valid tda index (its manifest.json parses and validates).
bool IsTdaIndex(const std::string& dir);

}  // namespace tda
