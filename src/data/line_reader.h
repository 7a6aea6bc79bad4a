// Reads a text file line by line without holding it in memory: plain, gzip (".gz", zlib) or
// Zstandard (".zst", libzstd), chosen by the file name's extension. Lines are returned without
// their "\n" (a "\r" before it is dropped too); line numbers count from 1. Errors name the file
// (and the line where one applies): unreadable or truncated compressed data, or a line longer
// than `max_line_bytes`.
//
// Thread-compatible: one reader per thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace tda {

class LineReader {
 public:
  static constexpr int64_t kDefaultMaxLineBytes = int64_t{64} << 20;

  // kNotFound when the file does not exist, kInvalidArgument for other open failures.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<LineReader>> Open(
      const std::string& path, int64_t max_line_bytes = kDefaultMaxLineBytes);
  virtual ~LineReader() = default;

  // The next line into `line`: true, or false at the end of the file.
  [[nodiscard]] absl::StatusOr<bool> Next(std::string* line);
  // The number of the line Next returned last (0 before the first).
  int64_t line_number() const { return line_number_; }
  const std::string& path() const { return path_; }

 protected:
  explicit LineReader(std::string path, int64_t max_line_bytes)
      : path_(std::move(path)), max_line_bytes_(max_line_bytes) {}
  // Up to `capacity` decompressed bytes into `out`: how many (0 at the end of the data).
  [[nodiscard]] virtual absl::StatusOr<size_t> Read(char* out, size_t capacity) = 0;

 private:
  std::string path_;
  int64_t max_line_bytes_;
  int64_t line_number_ = 0;
  std::string buffer_;  // bytes read but not yet returned
  size_t begin_ = 0;    // first unreturned byte of buffer_
  bool at_end_ = false;
};

}  // namespace tda
