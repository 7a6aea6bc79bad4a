#include "index/gradient_index.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/atomic_file.h"
#include "common/checksum.h"
#include "common/status_macros.h"

namespace tda {
namespace {

// Rows scored per task in Score(): small enough to spread one query over all cores, large
// enough that a batch of queries runs as a real GEMM.
constexpr int64_t kScoreBlockRows = 4096;
// bf16 / f16 blocks are converted to f32 a tile at a time: up to 256 rows and at most 1 MiB of
// f32 (256 rows at dim 1024), so the tile stays in L2 while the GEMM reads it.
constexpr int64_t kConvertTileRows = 256;
constexpr int64_t kConvertTileFloats = 1 << 18;

std::string Join(const std::string& dir, const std::string& file) { return dir + "/" + file; }

// Role of a file in messages: "index shard grads-00001.f32", "index file samples.tsv".
std::string Describe(const FileEntry& entry, bool shard) {
  return absl::StrCat(shard ? "index shard " : "index file ", entry.file);
}

absl::Status SizeMismatch(const FileEntry& entry, bool shard, uint64_t actual) {
  return absl::DataLossError(
      absl::StrCat(Describe(entry, shard), ": ", actual, " bytes, manifest says ", entry.bytes,
                   actual < entry.bytes ? " (truncated?)" : " (overwritten or appended to?)"));
}

absl::Status ChecksumMismatch(const FileEntry& entry, bool shard, uint64_t actual) {
  return absl::DataLossError(absl::StrCat(Describe(entry, shard), ": checksum 0x",
                                          ChecksumHex(actual), " != manifest 0x", entry.xxh3,
                                          " (corrupted?)"));
}

absl::Status Missing(const FileEntry& entry, bool shard, const std::string& dir) {
  return absl::DataLossError(
      absl::StrCat(Describe(entry, shard), " is missing from ", dir, " (the manifest lists it)"));
}

// Checks a file's size and, with kFull, its checksum (read from disk).
absl::Status CheckFile(const std::string& dir, const FileEntry& entry,
                       GradientIndex::Verify verify, bool shard = false) {
  const std::string path = Join(dir, entry.file);
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return Missing(entry, shard, dir);
  uint64_t bytes = std::filesystem::file_size(path, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot stat ", path, ": ", ec.message()));
  if (bytes != entry.bytes) return SizeMismatch(entry, shard, bytes);
  if (verify == GradientIndex::Verify::kFull) {
    ASSIGN_OR_RETURN(uint64_t checksum, FileXxh3(path));
    if (ChecksumHex(checksum) != entry.xxh3) return ChecksumMismatch(entry, shard, checksum);
  }
  return absl::OkStatus();
}

// samples.tsv: one line per row, "id \t source \t label \t preview \n".
absl::Status ParseSamples(const std::string& text, const std::string& source, int64_t rows,
                          std::vector<SampleRecord>* samples,
                          std::unordered_map<std::string, int64_t>* row_of_id) {
  if (!text.empty() && text.back() != '\n') {
    return absl::DataLossError(
        absl::StrCat("index samples ", source, ": last line has no newline (truncated?)"));
  }
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
  lines.pop_back();  // Empty piece after the final newline (or the whole of an empty file).
  if (static_cast<int64_t>(lines.size()) != rows) {
    return absl::DataLossError(absl::StrCat("index samples ", source, ": ", lines.size(),
                                            " lines, manifest says ", rows, " rows"));
  }
  samples->reserve(lines.size());
  row_of_id->reserve(lines.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    std::vector<absl::string_view> fields = absl::StrSplit(lines[i], '\t');
    SampleRecord sample;
    if (fields.size() != 4 || fields[0].empty() || !absl::SimpleAtoi(fields[2], &sample.label)) {
      return absl::DataLossError(absl::StrCat(
          "index samples ", source, " line ", i + 1,
          ": expected 4 tab-separated fields (non-empty id, source, integer label, preview), "
          "found ",
          fields.size(), " fields"));
    }
    sample.id = std::string(fields[0]);
    sample.source = std::string(fields[1]);
    sample.preview = std::string(fields[3]);
    if (!row_of_id->emplace(sample.id, static_cast<int64_t>(i)).second) {
      return absl::DataLossError(absl::StrCat("index samples ", source, " line ", i + 1, ": id '",
                                              sample.id, "' appears twice"));
    }
    samples->push_back(std::move(sample));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<GradientIndex>> GradientIndex::Open(const std::string& dir,
                                                                   Verify verify) {
  const std::string manifest_path = Join(dir, kManifestFile);
  std::error_code ec;
  if (!std::filesystem::exists(manifest_path, ec)) {
    return absl::NotFoundError(absl::StrCat("no index at ", dir, " (", kManifestFile,
                                            " missing): build one with `tda index build`"));
  }
  std::string manifest_text;
  RETURN_IF_ERROR(ReadFile(manifest_path, &manifest_text));
  std::unique_ptr<GradientIndex> index(new GradientIndex());
  index->dir_ = dir;
  ASSIGN_OR_RETURN(index->manifest_, ManifestFromJson(manifest_text, manifest_path));
  const Manifest& m = index->manifest_;
  absl::StatusOr<RowDType> dtype = ParseRowDType(m.dtype);
  if (!dtype.ok()) {  // The manifest parser already refuses these; kept as a safety net.
    return absl::DataLossError(absl::StrCat(manifest_path, ": ", dtype.status().message()));
  }
  index->dtype_ = *dtype;

  RETURN_IF_ERROR(CheckFile(dir, m.factors, verify));
  RETURN_IF_ERROR(CheckFile(dir, m.model_weights, verify));
  RETURN_IF_ERROR(CheckFile(dir, m.model_config, verify));

  // Shards: the size is checked on the open descriptor, so the checked file is the mapped one.
  for (const ShardEntry& entry : m.shards) {
    const std::string path = Join(dir, entry.file.file);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) return Missing(entry.file, true, dir);
      return absl::InternalError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
    }
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      int err = errno;
      ::close(fd);
      return absl::InternalError(absl::StrCat("cannot stat ", path, ": ", std::strerror(err)));
    }
    if (static_cast<uint64_t>(st.st_size) != entry.file.bytes) {
      ::close(fd);
      return SizeMismatch(entry.file, true, static_cast<uint64_t>(st.st_size));
    }
    void* data = ::mmap(nullptr, entry.file.bytes, PROT_READ, MAP_SHARED, fd, 0);
    int err = errno;
    ::close(fd);
    if (data == MAP_FAILED) {
      return absl::InternalError(absl::StrCat("cannot mmap ", path, ": ", std::strerror(err)));
    }
    // Registered before verification so that the destructor unmaps it on any later error.
    index->shards_.push_back(
        {static_cast<const char*>(data), entry.file.bytes, entry.row_begin, entry.row_end});
    if (verify == Verify::kFull) {
      uint64_t checksum = Xxh3(data, entry.file.bytes);
      if (ChecksumHex(checksum) != entry.file.xxh3) {
        return ChecksumMismatch(entry.file, true, checksum);
      }
    }
  }

  const std::string samples_path = Join(dir, m.samples.file);
  if (!std::filesystem::is_regular_file(samples_path, ec)) return Missing(m.samples, false, dir);
  std::string samples_text;
  RETURN_IF_ERROR(ReadFile(samples_path, &samples_text));
  if (samples_text.size() != m.samples.bytes) {
    return SizeMismatch(m.samples, false, samples_text.size());
  }
  if (verify == Verify::kFull) {
    uint64_t checksum = Xxh3(samples_text);
    if (ChecksumHex(checksum) != m.samples.xxh3) {
      return ChecksumMismatch(m.samples, false, checksum);
    }
  }
  RETURN_IF_ERROR(
      ParseSamples(samples_text, samples_path, m.rows, &index->samples_, &index->row_of_id_));
  return index;
}

GradientIndex::~GradientIndex() {
  for (const Shard& shard : shards_) {
    ::munmap(const_cast<char*>(shard.data), shard.mapped_bytes);
  }
}

int64_t GradientIndex::FindRow(const std::string& id) const {
  auto it = row_of_id_.find(id);
  return it == row_of_id_.end() ? -1 : it->second;
}

bool GradientIndex::CopyRow(int64_t row, float* out) const {
  if (row < 0 || row >= rows()) return false;
  auto it = std::upper_bound(shards_.begin(), shards_.end(), row,
                             [](int64_t r, const Shard& s) { return r < s.row_begin; });
  const Shard& shard = *(it - 1);
  const size_t row_bytes = static_cast<size_t>(dim()) * RowDTypeBytes(dtype_);
  ConvertToF32(shard.data + static_cast<size_t>(row - shard.row_begin) * row_bytes,
               static_cast<size_t>(dim()), dtype_, out);
  return true;
}

Eigen::MatrixXf GradientIndex::Score(const Eigen::MatrixXf& queries) const {
  if (queries.rows() != dim()) return Eigen::MatrixXf();
  using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Eigen::MatrixXf scores(rows(), queries.cols());
  // Blocks never straddle shards; each block is one GEMM (GEMV for a single query). Parallel
  // over blocks, so Eigen runs single-threaded inside each.
  struct Block {
    const char* data;
    int64_t row_begin, count;
  };
  const size_t row_bytes = static_cast<size_t>(dim()) * RowDTypeBytes(dtype_);
  std::vector<Block> blocks;
  for (const Shard& shard : shards_) {
    for (int64_t r = shard.row_begin; r < shard.row_end; r += kScoreBlockRows) {
      int64_t count = std::min(kScoreBlockRows, shard.row_end - r);
      blocks.push_back({shard.data + static_cast<size_t>(r - shard.row_begin) * row_bytes, r,
                        count});
    }
  }
  const int64_t num_blocks = static_cast<int64_t>(blocks.size());
  const int64_t d = dim();
  const RowDType dtype = dtype_;
  const int64_t tile_rows =
      std::max<int64_t>(1, std::min(kConvertTileRows, kConvertTileFloats / d));
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t b = 0; b < num_blocks; ++b) {
    const Block& block = blocks[b];
    if (dtype == RowDType::kF32) {
      Eigen::Map<const RowMajor> rows(reinterpret_cast<const float*>(block.data), block.count, d);
      scores.middleRows(block.row_begin, block.count).noalias() = rows * queries;
      continue;
    }
    // Convert a cache-sized tile to f32, then the same GEMM as for f32 rows.
    thread_local std::vector<float> tile;
    tile.resize(static_cast<size_t>(tile_rows * d));
    for (int64_t t = 0; t < block.count; t += tile_rows) {
      const int64_t count = std::min(tile_rows, block.count - t);
      ConvertToF32(block.data + static_cast<size_t>(t) * row_bytes,
                   static_cast<size_t>(count * d), dtype, tile.data());
      Eigen::Map<const RowMajor> rows(tile.data(), count, d);
      scores.middleRows(block.row_begin + t, count).noalias() = rows * queries;
    }
  }
  return scores;
}

absl::Status VerifyIndex(const std::string& dir,
                         const std::function<void(const FileCheck&)>& on_file,
                         const ProgressFn& progress) {
  const std::string manifest_path = Join(dir, kManifestFile);
  std::error_code ec;
  if (!std::filesystem::exists(manifest_path, ec)) {
    return absl::NotFoundError(absl::StrCat("no index at ", dir, " (", kManifestFile,
                                            " missing): build one with `tda index build`"));
  }
  std::string manifest_text;
  RETURN_IF_ERROR(ReadFile(manifest_path, &manifest_text));
  ASSIGN_OR_RETURN(Manifest m, ManifestFromJson(manifest_text, manifest_path));

  std::vector<std::pair<const FileEntry*, bool>> files;  // (entry, is a shard)
  for (const ShardEntry& shard : m.shards) files.push_back({&shard.file, true});
  for (const FileEntry* entry : {&m.samples, &m.factors, &m.model_weights, &m.model_config}) {
    files.push_back({entry, false});
  }
  int64_t total = 0, done = 0;
  for (const auto& [entry, shard] : files) total += static_cast<int64_t>(entry->bytes);
  absl::Status first;
  for (const auto& [entry, shard] : files) {
    absl::Status status = CheckFile(dir, *entry, GradientIndex::Verify::kFull, shard);
    if (on_file) on_file({entry->file, entry->bytes, status});
    first.Update(status);
    done += static_cast<int64_t>(entry->bytes);
    ReportProgress(progress, "verify", done, total);
  }
  RETURN_IF_ERROR(first);
  // Every byte is as the manifest says; what remains is the sample table's syntax (and the
  // mmap of every shard), which Open checks.
  return GradientIndex::Open(dir, GradientIndex::Verify::kSizes).status();
}

}  // namespace tda
