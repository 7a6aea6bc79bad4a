#include "repository_support.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace tda::testing {
namespace {

namespace fs = std::filesystem;

absl::Status RunCli(const std::vector<std::string>& argv) {
  absl::StatusOr<CommandResult> result = RunCommand(argv, 300);
  if (!result.ok()) return result.status();
  if (result->exit_code != 0) {
    return absl::InternalError(absl::StrCat("tda ", argv[1], " exited with ", result->exit_code,
                                            ": ", result->stdout_text));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> BuildFortunesIndex(const std::string& dir) {
  const std::string model = dir + "/gpt-model", index = dir + "/gpt-index";
  if (absl::Status s = RunCli({TDA_CLI_BINARY, "train", "--model-kind", "gpt", "--recipe", "tiny",
                               "--out", model, "--threads", "1"});
      !s.ok()) {
    return s;
  }
  if (absl::Status s = RunCli({TDA_CLI_BINARY, "index", "build", "--model", model, "--out", index,
                               "--projection-dim", "8", "--threads", "1"});
      !s.ok()) {
    return s;
  }
  return index;
}

absl::StatusOr<std::string> AddVersion(const std::string& repository, const std::string& name,
                                       int64_t version, const std::string& index_dir) {
  const fs::path name_dir = fs::path(repository) / name;
  const fs::path incoming = name_dir / absl::StrCat(".incoming-", version);
  const fs::path final_dir = name_dir / absl::StrCat(version);
  std::error_code error;
  fs::create_directories(name_dir, error);
  if (!error) fs::copy(index_dir, incoming, fs::copy_options::recursive, error);
  if (!error) fs::rename(incoming, final_dir, error);
  if (error) {
    return absl::InternalError(
        absl::StrCat("cannot add ", index_dir, " as ", final_dir.string(), ": ", error.message()));
  }
  return final_dir.string();
}

absl::StatusOr<std::unique_ptr<ChildProcess>> StartRepositoryServer(
    const std::string& repository, const std::vector<std::string>& extra, std::string* address) {
  std::vector<std::string> argv = {TDA_SERVER_BINARY, "--repository", repository, "--listen",
                                   "127.0.0.1:0",     "--threads",    "1"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  absl::StatusOr<std::unique_ptr<ChildProcess>> child = ChildProcess::Start(argv);
  if (!child.ok()) return child.status();
  absl::StatusOr<std::string> line = (*child)->ReadLineContaining("tda-server listening on ", 120);
  if (!line.ok()) return line.status();
  *address = line->substr(line->rfind(' ') + 1);
  return child;
}

std::vector<std::string> MappedFilesContaining(pid_t pid, const std::string& fragment) {
  std::ifstream maps(absl::StrCat("/proc/", pid, "/maps"));
  std::vector<std::string> files;
  for (std::string line; std::getline(maps, line);) {
    const size_t slash = line.find('/');
    if (slash != std::string::npos && absl::StrContains(line.substr(slash), fragment)) {
      files.push_back(line.substr(slash));
    }
  }
  return files;
}

int64_t ResidentBytes(pid_t pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  for (std::string line; std::getline(status, line);) {
    if (!absl::StartsWith(line, "VmRSS:")) continue;
    std::istringstream fields(line.substr(6));
    int64_t kib = 0;
    if (fields >> kib) return kib * 1024;
  }
  return -1;
}

int64_t DirectoryBytes(const std::string& dir) {
  int64_t total = 0;
  for (const fs::directory_entry& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) total += static_cast<int64_t>(entry.file_size());
  }
  return total;
}

bool WaitUntil(const std::function<bool()>& done, double timeout_seconds) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_seconds);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

}  // namespace tda::testing
