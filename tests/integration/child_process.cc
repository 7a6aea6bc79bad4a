#include "child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"

namespace tda::testing {

namespace {

using Clock = std::chrono::steady_clock;

int RemainingMs(Clock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

Clock::time_point After(double seconds) {
  return Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
}

}  // namespace

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Start(
    const std::vector<std::string>& argv) {
  if (argv.empty()) return absl::InvalidArgumentError("empty argv");
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);  // dup2 clears O_CLOEXEC on the new descriptor
    execv(args[0], args.data());
    const char message[] = "exec failed\n";
    (void)!write(STDERR_FILENO, message, sizeof(message) - 1);
    _exit(127);
  }
  close(fds[1]);
  auto child = std::unique_ptr<ChildProcess>(new ChildProcess());
  child->pid_ = pid;
  child->stdout_fd_ = fds[0];
  return child;
}

ChildProcess::~ChildProcess() {
  if (!exited_ && pid_ > 0) {
    kill(pid_, SIGKILL);
    int status;
    waitpid(pid_, &status, 0);
  }
  if (stdout_fd_ >= 0) close(stdout_fd_);
}

absl::StatusOr<bool> ChildProcess::ReadSome(int timeout_ms) {
  pollfd p{stdout_fd_, POLLIN, 0};
  const int ready = poll(&p, 1, timeout_ms);
  if (ready < 0 && errno != EINTR) {
    return absl::InternalError(absl::StrCat("poll: ", std::strerror(errno)));
  }
  if (ready <= 0) return true;
  char chunk[4096];
  const ssize_t n = read(stdout_fd_, chunk, sizeof(chunk));
  if (n < 0 && errno != EINTR)
    return absl::InternalError(absl::StrCat("read: ", std::strerror(errno)));
  if (n == 0) return false;
  if (n > 0) buffer_.append(chunk, static_cast<size_t>(n));
  return true;
}

absl::StatusOr<std::string> ChildProcess::ReadLineContaining(const std::string& needle,
                                                             double timeout_seconds) {
  const Clock::time_point deadline = After(timeout_seconds);
  while (true) {
    size_t newline;
    while ((newline = buffer_.find('\n')) != std::string::npos) {
      std::string line = buffer_.substr(0, newline);
      buffer_.erase(0, newline + 1);
      if (line.find(needle) != std::string::npos) return line;
    }
    if (RemainingMs(deadline) == 0) {
      return absl::DeadlineExceededError(
          absl::StrCat("no line with '", needle, "' within ", timeout_seconds, " s"));
    }
    absl::StatusOr<bool> open = ReadSome(RemainingMs(deadline));
    if (!open.ok()) return open.status();
    if (!*open) {
      return absl::UnavailableError(
          absl::StrCat("child closed stdout before printing '", needle, "'"));
    }
  }
}

absl::StatusOr<std::string> ChildProcess::ReadAll(double timeout_seconds) {
  const Clock::time_point deadline = After(timeout_seconds);
  while (true) {
    if (RemainingMs(deadline) == 0) return absl::DeadlineExceededError("child kept stdout open");
    absl::StatusOr<bool> open = ReadSome(RemainingMs(deadline));
    if (!open.ok()) return open.status();
    if (!*open) break;
  }
  std::string out;
  out.swap(buffer_);
  return out;
}

void ChildProcess::Signal(int signal_number) {
  if (!exited_) kill(pid_, signal_number);
}

absl::StatusOr<int> ChildProcess::Wait(double timeout_seconds) {
  const Clock::time_point deadline = After(timeout_seconds);
  while (!exited_) {
    int status = 0;
    const pid_t done = waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
      exited_ = true;
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      break;
    }
    if (RemainingMs(deadline) == 0) {
      return absl::DeadlineExceededError(
          absl::StrCat("child ", pid_, " still running after ", timeout_seconds, " s"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return exit_code_;
}

absl::StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                         double timeout_seconds) {
  absl::StatusOr<std::unique_ptr<ChildProcess>> child = ChildProcess::Start(argv);
  if (!child.ok()) return child.status();
  CommandResult result;
  absl::StatusOr<std::string> out = (*child)->ReadAll(timeout_seconds);
  if (!out.ok()) return out.status();
  result.stdout_text = *out;
  absl::StatusOr<int> code = (*child)->Wait(timeout_seconds);
  if (!code.ok()) return code.status();
  result.exit_code = *code;
  return result;
}

}  // namespace tda::testing
