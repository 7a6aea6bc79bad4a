#include "common/npy.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/atomic_file.h"
#include "common/status_macros.h"

namespace tda {
namespace {

absl::Status WriteNpy(const std::string& path, const char* descr,
                      const std::vector<int64_t>& shape, const void* data, size_t item_size) {
  int64_t numel = 1;
  for (int64_t d : shape) numel *= d;
  std::string shape_text = absl::StrJoin(shape, ", ");
  if (shape.size() == 1) shape_text += ",";
  std::string header = absl::StrCat("{'descr': '", descr, "', 'fortran_order': False, 'shape': (",
                                    shape_text, "), }");
  // Magic (6) + version (2) + header length (2) + header + '\n' is padded to a multiple of 64.
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  std::string out("\x93NUMPY\x01\x00", 8);
  out.push_back(static_cast<char>(header.size() & 0xff));
  out.push_back(static_cast<char>((header.size() >> 8) & 0xff));
  out += header;
  AtomicFileWriter writer;
  RETURN_IF_ERROR(writer.Open(path));
  RETURN_IF_ERROR(writer.Append(out.data(), out.size()));
  RETURN_IF_ERROR(writer.Append(data, static_cast<size_t>(numel) * item_size));
  return writer.Commit();
}

// The value after 'key': in a header dict, up to the next top-level ',' (or '}').
bool HeaderValue(absl::string_view header, absl::string_view key, absl::string_view* value) {
  const std::string quoted = absl::StrCat("'", key, "'");
  size_t at = header.find(quoted);
  if (at == absl::string_view::npos) return false;
  at = header.find(':', at + quoted.size());
  if (at == absl::string_view::npos) return false;
  size_t end = at + 1;
  int depth = 0;
  for (; end < header.size(); ++end) {
    const char c = header[end];
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (depth == 0 && (c == ',' || c == '}')) break;
  }
  *value = absl::StripAsciiWhitespace(header.substr(at + 1, end - at - 1));
  return true;
}

}  // namespace

absl::Status WriteNpyF32(const std::string& path, const std::vector<int64_t>& shape,
                         const float* data) {
  return WriteNpy(path, "<f4", shape, data, sizeof(float));
}

absl::Status WriteNpyI64(const std::string& path, const std::vector<int64_t>& shape,
                         const int64_t* data) {
  return WriteNpy(path, "<i8", shape, data, sizeof(int64_t));
}

NpyFile::NpyFile(NpyFile&& other) noexcept { *this = std::move(other); }

NpyFile& NpyFile::operator=(NpyFile&& other) noexcept {
  if (this == &other) return *this;
  if (map_ != nullptr) munmap(map_, map_size_);
  path_ = std::move(other.path_);
  dtype_ = std::move(other.dtype_);
  shape_ = std::move(other.shape_);
  fortran_order_ = other.fortran_order_;
  item_size_ = other.item_size_;
  map_ = std::exchange(other.map_, nullptr);
  map_size_ = std::exchange(other.map_size_, 0);
  data_ = std::exchange(other.data_, nullptr);
  return *this;
}

NpyFile::~NpyFile() {
  if (map_ != nullptr) munmap(map_, map_size_);
}

int64_t NpyFile::numel() const {
  int64_t n = 1;
  for (int64_t d : shape_) n *= d;
  return n;
}

std::string NpyFile::ShapeText() const {
  return absl::StrCat("(", absl::StrJoin(shape_, ", "), shape_.size() == 1 ? ",)" : ")");
}

absl::StatusOr<NpyFile> NpyFile::Open(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const std::string why = std::strerror(errno);
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat(path, ": no such file"));
    return absl::InvalidArgumentError(absl::StrCat(path, ": cannot open: ", why));
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
  }
  NpyFile file;
  file.path_ = path;
  file.map_size_ = static_cast<size_t>(st.st_size);
  if (file.map_size_ > 0) {
    void* map = mmap(nullptr, file.map_size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
      const std::string why = std::strerror(errno);
      close(fd);
      return absl::InvalidArgumentError(absl::StrCat(path, ": cannot mmap: ", why));
    }
    file.map_ = map;
  }
  close(fd);
  const auto* bytes = static_cast<const unsigned char*>(file.map_);
  const size_t size = file.map_size_;
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a valid .npy file: ", why));
  };
  if (size < 10 || std::memcmp(bytes, "\x93NUMPY", 6) != 0) return bad("no \\x93NUMPY magic");
  const int major = bytes[6];
  size_t header_len = 0, header_at = 0;
  if (major == 1) {
    header_len = bytes[8] | (size_t{bytes[9]} << 8);
    header_at = 10;
  } else if (major == 2 || major == 3) {
    if (size < 12) return bad("truncated header");
    header_len = bytes[8] | (size_t{bytes[9]} << 8) | (size_t{bytes[10]} << 16) |
                 (size_t{bytes[11]} << 24);
    header_at = 12;
  } else {
    return bad(absl::StrCat("format version ", major, " (expected 1, 2 or 3)"));
  }
  if (header_at + header_len > size) return bad("truncated header");
  const absl::string_view header(reinterpret_cast<const char*>(bytes) + header_at, header_len);
  absl::string_view descr, fortran, shape;
  if (!HeaderValue(header, "descr", &descr) || !HeaderValue(header, "fortran_order", &fortran) ||
      !HeaderValue(header, "shape", &shape)) {
    return bad(absl::StrCat("header lacks descr, fortran_order or shape: ", header));
  }
  if (descr.size() < 3 || (descr.front() != '\'' && descr.front() != '"')) {
    return bad(absl::StrCat("descr ", descr, " is not a simple dtype string"));
  }
  descr = descr.substr(1, descr.size() - 2);
  if (descr[0] == '>') {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": dtype '", descr, "' is big-endian; expected little-endian ('<')"));
  }
  file.dtype_ = std::string(descr[0] == '<' || descr[0] == '|' || descr[0] == '=' ? descr.substr(1)
                                                                                  : descr);
  if (fortran != "False" && fortran != "True") return bad("fortran_order is not True/False");
  file.fortran_order_ = fortran == "True";
  if (shape.size() < 2 || shape.front() != '(' || shape.back() != ')') return bad("shape");
  for (absl::string_view dim :
       absl::StrSplit(shape.substr(1, shape.size() - 2), ',', absl::SkipWhitespace())) {
    int64_t d = 0;
    if (!absl::SimpleAtoi(dim, &d) || d < 0) return bad(absl::StrCat("shape ", shape));
    file.shape_.push_back(d);
  }
  const absl::string_view digits = absl::string_view(file.dtype_).substr(1);
  if (file.dtype_.size() < 2 || !absl::SimpleAtoi(digits, &file.item_size_) ||
      file.item_size_ <= 0) {
    return bad(absl::StrCat("dtype '", descr, "'"));
  }
  const size_t data_at = header_at + header_len;
  const size_t need = static_cast<size_t>(file.numel()) * static_cast<size_t>(file.item_size_);
  if (size - data_at < need) {
    return bad(absl::StrCat("data is ", size - data_at, " bytes, shape ", file.ShapeText(),
                            " of ", file.dtype_, " needs ", need));
  }
  file.data_ = bytes + data_at;
  return file;
}

}  // namespace tda
