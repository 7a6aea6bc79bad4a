// Where a job's paths may point: every path in a job spec is confined to the server's roots.
//
//   inputs  (PathRole::kInput)   relative paths resolve against --data-root; an absolute path
//                                must lie under --data-root or --output-root (a job may read
//                                what an earlier job wrote).
//   outputs (kOutputFile/-Dir)   relative paths resolve against --output-root; an absolute
//                                path must lie under it, must not be the root itself, and must
//                                not be the state directory, inside it, or a directory that
//                                contains it (the job database lives there), even when a root
//                                is configured to contain the state directory.
//
// Resolution: the path is joined to its root when relative, normalised lexically, then
// resolved with std::filesystem::weakly_canonical (realpath of the longest existing prefix,
// so symlinks are followed and `..` is applied to real directories); containment is checked
// on the resolved path, component by component (so /data-x is not "under" /data). A path that
// is a dangling symlink is refused. Violations are kPermissionDenied naming the field, the
// path as given, what it resolved to and the root, with what to do instead.
//
// The server resolves a spec's paths at submission (the stored spec holds the resolved,
// absolute paths) and the worker resolves them again before the job runs and once more right
// before each output is written (JobContext::PrepareOutput), so a symlink swapped in meanwhile
// is caught.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "jobs/job_spec.h"

namespace tda {

struct JobRoots {
  std::string data_root;    // inputs; absolute and canonical once made by MakeJobRoots
  std::string output_root;  // outputs; absolute and canonical
  std::string state_dir;    // never an output; absolute and canonical
};

// The roots of a server with state directory `state_dir`: `data_root` and `output_root` as
// given, or "<state_dir>/data" and "<state_dir>/outputs" when empty; each is created if
// missing and made canonical. kInvalidArgument when state_dir is empty.
[[nodiscard]] absl::StatusOr<JobRoots> MakeJobRoots(const std::string& state_dir,
                                                    const std::string& data_root,
                                                    const std::string& output_root);

// Where `path` (field `field` of a spec, non-empty) resolves, as described above.
[[nodiscard]] absl::StatusOr<std::string> ResolveJobPath(const JobRoots& roots,
                                                         const std::string& field,
                                                         const std::string& path, PathRole role);

// A normalised spec of `kind` with every non-empty path field replaced by ResolveJobPath's
// result (compact JSON).
[[nodiscard]] absl::StatusOr<std::string> ResolveSpecPaths(const JobKind& kind,
                                                           const std::string& spec_json,
                                                           const JobRoots& roots);

// Whether `path` is `root` or lies under it, comparing whole components of the two (both
// absolute and normalised).
bool IsWithin(const std::string& path, const std::string& root);

}  // namespace tda
