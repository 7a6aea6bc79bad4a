// A child process for integration tests: fork + exec with stdout captured through a pipe
// (stderr is inherited, so the child's logs land in the test log). The destructor kills a child
// that is still running (SIGKILL) and reaps it, so a failing test never leaks a server.
// Not thread-safe.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace tda::testing {

class ChildProcess {
 public:
  // argv[0] is the executable's path. kInternal when fork/exec/pipe fail.
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Start(const std::vector<std::string>& argv);
  ~ChildProcess();

  // Reads stdout until a line containing `needle` arrives and returns that line.
  // kDeadlineExceeded after `timeout_seconds`, kUnavailable when stdout closes first.
  absl::StatusOr<std::string> ReadLineContaining(const std::string& needle, double timeout_seconds);
  // Reads stdout until it closes; kDeadlineExceeded after `timeout_seconds`.
  absl::StatusOr<std::string> ReadAll(double timeout_seconds);

  void Signal(int signal_number);
  // Waits for the child to exit: its exit code, or 128 + signal when a signal killed it.
  // kDeadlineExceeded after `timeout_seconds` (the child keeps running).
  absl::StatusOr<int> Wait(double timeout_seconds);

  pid_t pid() const { return pid_; }

 private:
  ChildProcess() = default;
  // Appends what is available within `timeout_ms` to buffer_; false at end of file.
  absl::StatusOr<bool> ReadSome(int timeout_ms);

  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  bool exited_ = false;
  int exit_code_ = 0;
  std::string buffer_;  // stdout read but not yet returned
};

struct CommandResult {
  int exit_code = 0;
  std::string stdout_text;
};
// Runs argv to completion (at most `timeout_seconds`), capturing stdout.
absl::StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                         double timeout_seconds);

}  // namespace tda::testing
