// Helpers for the index repository tests (repository_serving_test, repository_reload_test):
// a real fortunes GPT index built through the tda CLI, versions dropped into a repository
// directory the way an operator should (written under a hidden name, then renamed in),
// tda-server started on a repository, and what /proc says of a server process (the files it
// maps, its resident memory). Not thread-safe.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "child_process.h"

namespace tda::testing {

// Trains the tiny fortunes GPT (tda train --recipe tiny) into DIR/gpt-model and indexes it
// (projection 8) into DIR/gpt-index; returns the index directory.
absl::StatusOr<std::string> BuildFortunesIndex(const std::string& dir);

// Copies index directory `index_dir` to REPOSITORY/NAME/.incoming-VERSION, then renames it to
// REPOSITORY/NAME/VERSION (atomic: a poller never sees half a version). Returns the new path.
absl::StatusOr<std::string> AddVersion(const std::string& repository, const std::string& name,
                                       int64_t version, const std::string& index_dir);

// Starts tda-server --repository REPOSITORY --listen 127.0.0.1:0 --threads 1 plus `extra` and
// reads the bound address from its "listening" line.
absl::StatusOr<std::unique_ptr<ChildProcess>> StartRepositoryServer(
    const std::string& repository, const std::vector<std::string>& extra, std::string* address);

// The files of /proc/PID/maps whose path contains `fragment` (one entry per mapping).
std::vector<std::string> MappedFilesContaining(pid_t pid, const std::string& fragment);
// VmRSS of /proc/PID/status in bytes (-1 when unreadable).
int64_t ResidentBytes(pid_t pid);
// Total size of the regular files under `dir`.
int64_t DirectoryBytes(const std::string& dir);

// Polls `done` every 20 ms until it is true (true) or `timeout_seconds` pass (false).
bool WaitUntil(const std::function<bool()>& done, double timeout_seconds);

}  // namespace tda::testing
