// Crash-safe file output: data goes to "<path>.tmp-<pid>", is fsynced, then renamed over
// `path`, and the parent directory is fsynced. A reader therefore sees either the old file or
// the complete new one, never a torn write. Thread-compatible (one writer per path).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace tda {

// Writes `contents` to `path` atomically (temp + fsync + rename + directory fsync).
[[nodiscard]] absl::Status WriteFileAtomically(const std::string& path, std::string_view contents);

// Streaming variant for large files: Open, Append any number of times, then Commit.
// Destroying an uncommitted writer removes the temporary file.
class AtomicFileWriter {
 public:
  AtomicFileWriter() = default;
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  [[nodiscard]] absl::Status Open(const std::string& path);
  [[nodiscard]] absl::Status Append(const void* data, size_t size);
  // fsync, rename to the final path, fsync the directory.
  [[nodiscard]] absl::Status Commit();
  uint64_t bytes_written() const { return bytes_written_; }

 private:
  std::string path_;
  std::string temp_path_;
  int fd_ = -1;
  uint64_t bytes_written_ = 0;
};

// Reads a whole file. kNotFound if missing, kDataLoss-free: no content checks here.
[[nodiscard]] absl::Status ReadFile(const std::string& path, std::string* contents);

// Creates a directory and its parents (like mkdir -p).
[[nodiscard]] absl::Status MakeDirectories(const std::string& path);

// fsyncs a directory so that renames inside it are durable.
[[nodiscard]] absl::Status SyncDirectory(const std::string& path);

}  // namespace tda
