#include "jobs/job_paths.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "common/status_macros.h"

namespace tda {

namespace {

namespace fs = std::filesystem;

absl::StatusOr<std::string> CanonicalRoot(const std::string& dir, const char* flag) {
  RETURN_IF_ERROR(MakeDirectories(dir));
  std::error_code error;
  const fs::path canonical = fs::canonical(dir, error);
  if (error) {
    return absl::FailedPreconditionError(
        absl::StrCat(flag, " ", dir, " cannot be resolved: ", error.message()));
  }
  return canonical.string();
}

absl::Status Denied(const std::string& field, const std::string& given, const std::string& resolved,
                    const std::string& why) {
  return absl::PermissionDeniedError(
      absl::StrCat("job path ", field, " '", given, "'",
                   given == resolved ? "" : " (resolves to '" + resolved + "')", " ", why));
}

}  // namespace

bool IsWithin(const std::string& path, const std::string& root) {
  const fs::path p(path), r(root);
  auto pi = p.begin();
  for (auto ri = r.begin(); ri != r.end(); ++ri, ++pi) {
    if (ri->empty()) continue;  // a trailing separator
    if (pi == p.end() || *pi != *ri) return false;
  }
  return true;
}

absl::StatusOr<JobRoots> MakeJobRoots(const std::string& state_dir, const std::string& data_root,
                                      const std::string& output_root) {
  if (state_dir.empty()) return absl::InvalidArgumentError("job roots need a state directory");
  JobRoots roots;
  ASSIGN_OR_RETURN(roots.state_dir, CanonicalRoot(state_dir, "--state-dir"));
  ASSIGN_OR_RETURN(
      roots.data_root,
      CanonicalRoot(data_root.empty() ? state_dir + "/data" : data_root, "--data-root"));
  ASSIGN_OR_RETURN(
      roots.output_root,
      CanonicalRoot(output_root.empty() ? state_dir + "/outputs" : output_root, "--output-root"));
  // An output root may contain the state directory (outputs still never touch it, see
  // ResolveJobPath) or lie inside it, but may not be it.
  if (roots.output_root == roots.state_dir) {
    return absl::InvalidArgumentError(
        absl::StrCat("--output-root ", output_root,
                     " is the state directory; use a directory beside or "
                     "under it (default: <state-dir>/outputs)"));
  }
  return roots;
}

absl::StatusOr<std::string> ResolveJobPath(const JobRoots& roots, const std::string& field,
                                           const std::string& path, PathRole role) {
  const bool output = IsOutput(role);
  const std::string& root = output ? roots.output_root : roots.data_root;
  const char* flag = output ? "--output-root" : "--data-root";
  fs::path joined(path);
  if (joined.is_relative()) joined = fs::path(root) / joined;
  std::error_code error;
  const std::string resolved = fs::weakly_canonical(joined.lexically_normal(), error).string();
  if (error) {
    return absl::PermissionDeniedError(
        absl::StrCat("job path ", field, " '", path, "' cannot be resolved: ", error.message()));
  }
  if (fs::is_symlink(fs::symlink_status(resolved, error))) {
    return Denied(field, path, resolved, "is a dangling symlink; use a real path");
  }
  const bool allowed =
      IsWithin(resolved, root) || (!output && IsWithin(resolved, roots.output_root));
  if (!allowed) {
    return Denied(field, path, resolved,
                  absl::StrCat("is outside ", flag, " ", root,
                               output ? "" : absl::StrCat(" and --output-root ", roots.output_root),
                               "; use a path under it (relative paths are resolved against it)"));
  }
  if (output) {
    if (resolved == root) {
      return Denied(field, path, resolved,
                    absl::StrCat("is ", flag, " itself; name a file or directory under it"));
    }
    // Inside the state directory only through an output root that lies inside it (the
    // default <state-dir>/outputs): never the database, the output registry or the directory.
    const bool in_state = IsWithin(resolved, roots.state_dir) && !IsWithin(root, roots.state_dir);
    if (in_state || IsWithin(roots.state_dir, resolved)) {
      return Denied(
          field, path, resolved,
          absl::StrCat("is, or is inside or contains, the server's --state-dir ", roots.state_dir,
                       " (the job database); write outputs elsewhere under ", root));
    }
  }
  return resolved;
}

absl::StatusOr<std::string> ResolveSpecPaths(const JobKind& kind, const std::string& spec_json,
                                             const JobRoots& roots) {
  nlohmann::json spec = nlohmann::json::parse(spec_json, nullptr, false);
  if (!spec.is_object()) return absl::InvalidArgumentError("spec is not a JSON object");
  for (const JobSpecField& f : kind.fields) {
    if (f.path == PathRole::kNone || !spec.contains(f.name) || !spec[f.name].is_string()) continue;
    const std::string value = spec[f.name].get<std::string>();
    if (value.empty()) continue;  // an optional path left out
    ASSIGN_OR_RETURN(spec[f.name], ResolveJobPath(roots, f.name, value, f.path));
  }
  return spec.dump();
}

}  // namespace tda
