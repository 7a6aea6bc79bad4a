#include "jobs/job_outputs.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "common/checksum.h"
#include "common/status_macros.h"
#include "index/manifest.h"
#include "jobs/job_store.h"

namespace tda {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

struct Entry {
  std::string path;
  std::string fingerprint;
  int64_t job_id = 0;
  int64_t schedule_id = 0;
};

absl::StatusOr<std::string> DirectoryFingerprint(const std::string& dir) {
  std::vector<std::string> files;
  std::error_code error;
  for (fs::recursive_directory_iterator it(dir, error), end; !error && it != end;
       it.increment(error)) {
    if (it->is_regular_file()) files.push_back(fs::relative(it->path(), dir).string());
  }
  if (error) return absl::InternalError(absl::StrCat("cannot list ", dir, ": ", error.message()));
  std::sort(files.begin(), files.end());
  Xxh3Stream stream;
  for (const std::string& file : files) {
    ASSIGN_OR_RETURN(const uint64_t sum, FileXxh3(dir + "/" + file));
    const std::string line = absl::StrCat(file, "\n", ChecksumHex(sum), "\n");
    stream.Update(line.data(), line.size());
  }
  return absl::StrCat("dir:", ChecksumHex(stream.Digest()));
}

absl::StatusOr<std::string> Fingerprint(const std::string& path) {
  if (!fs::is_directory(path)) {
    ASSIGN_OR_RETURN(const uint64_t sum, FileXxh3(path));
    return absl::StrCat("file:", ChecksumHex(sum));
  }
  const std::string manifest = absl::StrCat(path, "/", kManifestFile);
  if (fs::is_regular_file(manifest)) {
    ASSIGN_OR_RETURN(const uint64_t sum, FileXxh3(manifest));
    return absl::StrCat("index:", ChecksumHex(sum));
  }
  return DirectoryFingerprint(path);
}

std::optional<Entry> ReadEntry(const std::string& entry_path, const std::string& path) {
  std::string text;
  if (!ReadFile(entry_path, &text).ok()) return std::nullopt;
  const json j = json::parse(text, nullptr, false);
  if (!j.is_object() || j.value("path", "") != path) return std::nullopt;
  return Entry{path, j.value("fingerprint", ""), j.value("job_id", int64_t{0}),
               j.value("schedule_id", int64_t{0})};
}

std::string Describe(const Entry& entry) {
  return absl::StrCat(
      "written by job ", entry.job_id,
      entry.schedule_id != 0 ? absl::StrCat(" of schedule ", entry.schedule_id) : "");
}

}  // namespace

bool IsTdaIndex(const std::string& dir) {
  const std::string manifest = absl::StrCat(dir, "/", kManifestFile);
  std::string text;
  return ReadFile(manifest, &text).ok() && ManifestFromJson(text, manifest).ok();
}

OutputRegistry::OutputRegistry(const JobRoots& roots) : dir_(roots.state_dir + "/job-outputs") {}

std::string OutputRegistry::EntryPath(const std::string& path) const {
  return absl::StrCat(dir_, "/", ChecksumHex(Xxh3(path)), ".json");
}

absl::Status OutputRegistry::CheckReplaceable(const std::string& field, const std::string& path,
                                              PathRole role, const OutputClaim& claim) const {
  std::error_code error;
  const fs::file_status status = fs::symlink_status(path, error);
  if (!fs::exists(status)) return absl::OkStatus();
  const bool directory = role == PathRole::kOutputDirectory;
  const std::string what = absl::StrCat("output ", field, " '", path, "'");
  if (directory ? !fs::is_directory(status) : !fs::is_regular_file(status)) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, " exists and is not a ", directory ? "directory" : "regular file",
                     "; tda never replaces it: choose a path that does not exist"));
  }
  if (directory && fs::is_empty(path, error) && !error) return absl::OkStatus();
  ASSIGN_OR_RETURN(const std::string fingerprint, Fingerprint(path));
  const std::optional<Entry> entry = ReadEntry(EntryPath(path), path);
  if (entry && entry->fingerprint == fingerprint) {
    const bool same_job = claim.job_id != 0 && entry->job_id == claim.job_id;
    const bool same_schedule = claim.schedule_id != 0 && entry->schedule_id == claim.schedule_id;
    if (same_job || same_schedule || claim.overwrite) return absl::OkStatus();
    return absl::AlreadyExistsError(
        absl::StrCat(what, " exists (", Describe(*entry),
                     "); set overwrite: true to replace it, or choose another path"));
  }
  if (directory && IsTdaIndex(path)) {
    if (claim.overwrite) return absl::OkStatus();
    return absl::AlreadyExistsError(absl::StrCat(
        what,
        " is an existing tda index; set overwrite: true to replace it, or choose another "
        "path"));
  }
  return absl::FailedPreconditionError(
      absl::StrCat(what, " exists and is not ", directory ? "a tda index or a directory" : "a file",
                   " a tda job wrote (or it changed since); tda never replaces it, with or without "
                   "overwrite: choose a path that does not exist, or move it away yourself"));
}

absl::Status OutputRegistry::Record(const std::string& path, const OutputClaim& claim) const {
  ASSIGN_OR_RETURN(const std::string fingerprint, Fingerprint(path));
  RETURN_IF_ERROR(MakeDirectories(dir_));
  const json entry = {{"path", path},
                      {"fingerprint", fingerprint},
                      {"job_id", claim.job_id},
                      {"schedule_id", claim.schedule_id},
                      {"written_at", NowSeconds()}};
  return WriteFileAtomically(EntryPath(path), entry.dump() + "\n");
}

absl::Status CheckSpecOutputs(const JobKind& kind, const std::string& spec_json,
                              const OutputRegistry& registry, int64_t job_id, int64_t schedule_id) {
  const json spec = json::parse(spec_json, nullptr, false);
  if (!spec.is_object()) return absl::InvalidArgumentError("spec is not a JSON object");
  const OutputClaim claim{job_id, schedule_id, spec.value("overwrite", false)};
  for (const JobSpecField& f : kind.fields) {
    if (!IsOutput(f.path) || !spec.contains(f.name) || !spec[f.name].is_string()) continue;
    const std::string path = spec[f.name].get<std::string>();
    if (path.empty()) continue;
    RETURN_IF_ERROR(registry.CheckReplaceable(f.name, path, f.path, claim));
  }
  return absl::OkStatus();
}

absl::Status WriteJobOutput(JobContext& context, const std::string& field,
                            const std::function<absl::Status(const std::string&)>& write) {
  ASSIGN_OR_RETURN(const std::string path, context.PrepareOutput(field));
  RETURN_IF_ERROR(write(path));
  return context.RecordOutput(field);
}

}  // namespace tda
