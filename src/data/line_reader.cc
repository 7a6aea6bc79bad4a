#include "data/line_reader.h"

#include <zlib.h>
#include <zstd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace tda {
namespace {

constexpr size_t kChunkBytes = 1 << 16;

absl::Status OpenError(const std::string& path) {
  const int error = errno;
  const std::string message = absl::StrCat("cannot open '", path, "': ", std::strerror(error));
  return error == ENOENT ? absl::NotFoundError(message) : absl::InvalidArgumentError(message);
}

class PlainReader : public LineReader {
 public:
  PlainReader(std::string path, int64_t max_line_bytes, std::FILE* file)
      : LineReader(std::move(path), max_line_bytes), file_(file) {}
  ~PlainReader() override { std::fclose(file_); }

 protected:
  absl::StatusOr<size_t> Read(char* out, size_t capacity) override {
    const size_t n = std::fread(out, 1, capacity, file_);
    if (n == 0 && std::ferror(file_)) {
      return absl::DataLossError(absl::StrCat("read error in '", path(), "'"));
    }
    return n;
  }

 private:
  std::FILE* file_;
};

class GzipReader : public LineReader {
 public:
  GzipReader(std::string path, int64_t max_line_bytes, gzFile file)
      : LineReader(std::move(path), max_line_bytes), file_(file) {}
  ~GzipReader() override { gzclose(file_); }

 protected:
  absl::StatusOr<size_t> Read(char* out, size_t capacity) override {
    const int n = gzread(file_, out, static_cast<unsigned>(capacity));
    int code = Z_OK;
    const char* message = gzerror(file_, &code);
    if (n < 0) {
      return absl::DataLossError(absl::StrCat("'", path(), "' is not valid gzip data: ", message));
    }
    // At the end of a cut stream zlib returns what it has, then 0 with Z_BUF_ERROR.
    if (n == 0 && code == Z_BUF_ERROR) {
      return absl::DataLossError(
          absl::StrCat("'", path(), "' ends inside its gzip stream (truncated?)"));
    }
    return static_cast<size_t>(n);
  }

 private:
  gzFile file_;
};

class ZstdReader : public LineReader {
 public:
  ZstdReader(std::string path, int64_t max_line_bytes, std::FILE* file)
      : LineReader(std::move(path), max_line_bytes),
        file_(file),
        stream_(ZSTD_createDStream()),
        input_(kChunkBytes) {}
  ~ZstdReader() override {
    ZSTD_freeDStream(stream_);
    std::fclose(file_);
  }

 protected:
  absl::StatusOr<size_t> Read(char* out, size_t capacity) override {
    ZSTD_outBuffer output{out, capacity, 0};
    while (output.pos == 0) {
      if (in_.pos == in_.size) {
        const size_t n = std::fread(input_.data(), 1, input_.size(), file_);
        if (n == 0) {
          if (std::ferror(file_)) {
            return absl::DataLossError(absl::StrCat("read error in '", path(), "'"));
          }
          if (frame_open_) {
            return absl::DataLossError(
                absl::StrCat("'", path(), "' ends inside a Zstandard frame (truncated?)"));
          }
          return size_t{0};
        }
        in_ = ZSTD_inBuffer{input_.data(), n, 0};
      }
      const size_t result = ZSTD_decompressStream(stream_, &output, &in_);
      if (ZSTD_isError(result)) {
        return absl::DataLossError(absl::StrCat(
            "'", path(), "' is not valid Zstandard data: ", ZSTD_getErrorName(result)));
      }
      frame_open_ = result != 0;
    }
    return output.pos;
  }

 private:
  std::FILE* file_;
  ZSTD_DStream* stream_;
  std::vector<char> input_;
  ZSTD_inBuffer in_{nullptr, 0, 0};
  bool frame_open_ = false;
};

}  // namespace

absl::StatusOr<std::unique_ptr<LineReader>> LineReader::Open(const std::string& path,
                                                             int64_t max_line_bytes) {
  if (absl::EndsWith(path, ".gz")) {
    errno = 0;
    gzFile file = gzopen(path.c_str(), "rb");
    if (file == nullptr) return OpenError(path);
    gzbuffer(file, kChunkBytes);
    if (gzdirect(file) == 1) {  // zlib would read it as plain bytes; the name promised gzip
      gzclose(file);
      return absl::InvalidArgumentError(
          absl::StrCat("'", path, "' is named .gz but is not gzip data"));
    }
    return std::unique_ptr<LineReader>(new GzipReader(path, max_line_bytes, file));
  }
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) return OpenError(path);
  if (absl::EndsWith(path, ".zst")) {
    return std::unique_ptr<LineReader>(new ZstdReader(path, max_line_bytes, file));
  }
  return std::unique_ptr<LineReader>(new PlainReader(path, max_line_bytes, file));
}

absl::StatusOr<bool> LineReader::Next(std::string* line) {
  size_t from = begin_;  // bytes before `from` hold no newline
  while (true) {
    const size_t newline = buffer_.find('\n', from);
    const bool have_line = newline != std::string::npos || (at_end_ && begin_ < buffer_.size());
    const size_t end = newline == std::string::npos ? buffer_.size() : newline;
    if (static_cast<int64_t>(end - begin_) > max_line_bytes_) {
      return absl::InvalidArgumentError(absl::StrCat(
          path_, ":", line_number_ + 1, ": line longer than ", max_line_bytes_, " bytes"));
    }
    if (have_line) {
      line->assign(buffer_, begin_, end - begin_);
      if (!line->empty() && line->back() == '\r') line->pop_back();
      begin_ = newline == std::string::npos ? buffer_.size() : newline + 1;
      ++line_number_;
      return true;
    }
    if (at_end_) return false;
    buffer_.erase(0, begin_);
    begin_ = 0;
    const size_t have = buffer_.size();
    from = have;
    buffer_.resize(have + kChunkBytes);
    absl::StatusOr<size_t> n = Read(buffer_.data() + have, kChunkBytes);
    if (!n.ok()) return n.status();
    buffer_.resize(have + *n);
    if (*n == 0) at_end_ = true;
  }
}

}  // namespace tda
