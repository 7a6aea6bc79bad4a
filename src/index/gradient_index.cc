#include "index/gradient_index.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <mutex>
#include <system_error>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/atomic_file.h"
#include "common/checksum.h"
#include "common/status_macros.h"
#include "index/block_scorer.h"
#include "index/ensemble_manifest.h"
#include "index/top_rows.h"

namespace tda {
namespace {

// Rows scored per task in Scan(): small enough to spread one query over all cores, large
// enough that a batch of queries runs as a real GEMM ...
constexpr int64_t kScoreBlockRows = 4096;
// ... and at most this many multiply-adds (a few milliseconds on one core), but no fewer than
// kMinScoreBlockRows rows, so that a cancellation (checked per block) is seen quickly even for
// wide rows and many queries.
constexpr int64_t kScoreBlockMultiplyAdds = int64_t{1} << 25;
constexpr int64_t kMinScoreBlockRows = 64;

int64_t ScoreBlockRows(int64_t dim, int64_t queries) {
  const int64_t per_row = std::max<int64_t>(1, dim * queries);
  return std::clamp(kScoreBlockMultiplyAdds / per_row, kMinScoreBlockRows, kScoreBlockRows);
}

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

// The tombstone file: one line per deleted row, "row \t id \n", rows strictly ascending, each
// naming the id samples.tsv gives that row.
absl::Status ParseTombstones(const std::string& text, const std::string& source,
                             const std::vector<SampleRecord>& samples,
                             std::vector<uint8_t>* deleted, int64_t* count) {
  if (!text.empty() && text.back() != '\n') {
    return absl::DataLossError(
        absl::StrCat("index tombstones ", source, ": last line has no newline (truncated?)"));
  }
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
  lines.pop_back();
  deleted->assign(samples.size(), 0);
  int64_t previous = -1;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::vector<absl::string_view> fields = absl::StrSplit(lines[i], '\t');
    int64_t row = -1;
    if (fields.size() != 2 || !absl::SimpleAtoi(fields[0], &row) || row <= previous ||
        row >= static_cast<int64_t>(samples.size())) {
      return absl::DataLossError(absl::StrCat(
          "index tombstones ", source, " line ", i + 1,
          ": expected \"row<TAB>id\" with rows ascending in [0, ", samples.size(), "), found '",
          lines[i], "'"));
    }
    if (fields[1] != samples[static_cast<size_t>(row)].id) {
      return absl::DataLossError(absl::StrCat("index tombstones ", source, " line ", i + 1,
                                              ": row ", row, " is '",
                                              samples[static_cast<size_t>(row)].id,
                                              "' in the sample table, not '", fields[1], "'"));
    }
    (*deleted)[static_cast<size_t>(row)] = 1;
    previous = row;
  }
  *count = static_cast<int64_t>(lines.size());
  if (*count == 0) deleted->clear();
  return absl::OkStatus();
}

// Reads a small listed file whole, checking its size and, with kFull, its checksum.
absl::StatusOr<std::string> ReadListedFile(const std::string& dir, const FileEntry& entry,
                                           GradientIndex::Verify verify) {
  const std::string path = Join(dir, entry.file);
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return Missing(entry, false, dir);
  std::string text;
  RETURN_IF_ERROR(ReadFile(path, &text));
  if (text.size() != entry.bytes) return SizeMismatch(entry, false, text.size());
  if (verify == GradientIndex::Verify::kFull) {
    uint64_t checksum = Xxh3(text);
    if (ChecksumHex(checksum) != entry.xxh3) return ChecksumMismatch(entry, false, checksum);
  }
  return text;
}

// No manifest.json in `dir`: no index, or an ensemble of indexes (which has its members').
absl::Status MissingManifest(const std::string& dir) {
  if (IsEnsembleDir(dir)) {
    return absl::FailedPreconditionError(
        absl::StrCat(dir, " is an ensemble of indexes (", kEnsembleFile,
                     "); this works on one index: name a member (", EnsembleMemberDir(dir, 0),
                     ") or build a single index"));
  }
  return absl::NotFoundError(absl::StrCat("no index at ", dir, " (", kManifestFile,
                                          " missing): build one with `tda index build`"));
}

}  // namespace

absl::StatusOr<std::unique_ptr<GradientIndex>> GradientIndex::Open(const std::string& dir,
                                                                   Verify verify) {
  const std::string manifest_path = Join(dir, kManifestFile);
  std::error_code ec;
  if (!std::filesystem::exists(manifest_path, ec)) return MissingManifest(dir);
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
  ASSIGN_OR_RETURN(std::string samples_text, ReadListedFile(dir, m.samples, verify));
  RETURN_IF_ERROR(
      ParseSamples(samples_text, samples_path, m.rows, &index->samples_, &index->row_of_id_));
  if (!m.tombstones.file.empty()) {
    ASSIGN_OR_RETURN(std::string tombstones, ReadListedFile(dir, m.tombstones, verify));
    RETURN_IF_ERROR(ParseTombstones(tombstones, Join(dir, m.tombstones.file), index->samples_,
                                    &index->deleted_, &index->deleted_count_));
  }
  std::unordered_map<std::string, int32_t> source_number;
  index->source_of_row_.reserve(index->samples_.size());
  for (size_t r = 0; r < index->samples_.size(); ++r) {
    auto [it, added] = source_number.emplace(index->samples_[r].source,
                                             static_cast<int32_t>(index->sources_.size()));
    if (added) {
      index->sources_.push_back(it->first);
      index->live_rows_per_source_.push_back(0);
    }
    index->source_of_row_.push_back(it->second);
    if (!index->is_deleted(static_cast<int64_t>(r))) ++index->live_rows_per_source_[it->second];
  }
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

const char* GradientIndex::StoredRow(int64_t row) const {
  if (row < 0 || row >= rows()) return nullptr;
  auto it = std::upper_bound(shards_.begin(), shards_.end(), row,
                             [](int64_t r, const Shard& s) { return r < s.row_begin; });
  const Shard& shard = *(it - 1);
  const size_t row_bytes = static_cast<size_t>(dim()) * RowDTypeBytes(dtype_);
  return shard.data + static_cast<size_t>(row - shard.row_begin) * row_bytes;
}

bool GradientIndex::CopyRow(int64_t row, float* out) const {
  const char* stored = StoredRow(row);
  if (stored == nullptr) return false;
  ConvertToF32(stored, static_cast<size_t>(dim()), dtype_, out);
  return true;
}

const float* GradientIndex::RowF32(int64_t row, float* buffer) const {
  const char* stored = StoredRow(row);
  if (stored == nullptr) return nullptr;
  if (dtype_ == RowDType::kF32) return reinterpret_cast<const float*>(stored);
  ConvertToF32(stored, static_cast<size_t>(dim()), dtype_, buffer);
  return buffer;
}

Eigen::MatrixXf GradientIndex::Score(const Eigen::MatrixXf& queries) const {
  ScanOptions options;
  options.keep_scores = true;
  return Scan(queries, options).scores;
}

ScanResult GradientIndex::Scan(const Eigen::MatrixXf& queries, const ScanOptions& options) const {
  ScanResult result;
  if (queries.rows() != dim()) return result;
  const int64_t q_count = queries.cols();
  // Blocks never straddle shards.
  struct Block {
    const char* data;
    int64_t row_begin, count;
    size_t shard;
  };
  int64_t scan_dim = dim();  // of all terms: what the block size is chosen for
  for (const ScanTerm& term : options.terms) {
    const GradientIndex* other = term.index;
    bool same_rows = other != nullptr && term.queries != nullptr &&
                     term.queries->rows() == other->dim() && term.queries->cols() == q_count &&
                     other->rows() == rows() && other->shards_.size() == shards_.size();
    for (size_t s = 0; same_rows && s < shards_.size(); ++s) {
      same_rows = other->shards_[s].row_begin == shards_[s].row_begin &&
                  other->shards_[s].row_end == shards_[s].row_end;
    }
    if (!same_rows) {
      result.status = absl::InvalidArgumentError(absl::StrCat(
          "scan of ", dir_, ": an added index (", other == nullptr ? "null" : other->dir_,
          ") has other rows, shards or query shape"));
      return result;
    }
    scan_dim += other->dim();
  }
  const size_t row_bytes = static_cast<size_t>(dim()) * RowDTypeBytes(dtype_);
  const int64_t block_rows = ScoreBlockRows(scan_dim, q_count);
  std::vector<Block> blocks;
  for (size_t s = 0; s < shards_.size(); ++s) {
    const Shard& shard = shards_[s];
    for (int64_t r = shard.row_begin; r < shard.row_end; r += block_rows) {
      int64_t count = std::min(block_rows, shard.row_end - r);
      blocks.push_back(
          {shard.data + static_cast<size_t>(r - shard.row_begin) * row_bytes, r, count, s});
    }
  }
  if (options.keep_scores) result.scores.resize(rows(), q_count);
  const int64_t num_blocks = static_cast<int64_t>(blocks.size());
  const int64_t top_k = std::max<int64_t>(0, options.top_k);
  const size_t num_sources = sources_.size();
#ifdef _OPENMP
  const int threads = std::max(1, omp_get_max_threads());
#else
  const int threads = 1;
#endif
  // Per thread: top-k heaps and source sums of every query.
  struct ThreadState {
    std::vector<QueryTopRows> tops;  // one, with top_k > 0
    std::vector<double> sums;        // q * num_sources + s
  };
  std::vector<ThreadState> states(static_cast<size_t>(threads));
  for (ThreadState& state : states) {
    if (top_k > 0) state.tops.emplace_back(q_count, top_k, /*split_by_sign=*/true);
    if (options.source_sums) state.sums.assign(static_cast<size_t>(q_count) * num_sources, 0.0);
  }
  const Cancellation* cancellation =
      options.cancellation != nullptr && options.cancellation->can_stop() ? options.cancellation
                                                                          : nullptr;
  std::atomic<bool> stopped{false};
  std::mutex stop_mutex;  // guards result.status
  // Static schedule: each thread takes fixed blocks in order, so per-thread sums (and their
  // merge in thread order) are the same from run to run.
#pragma omp parallel for schedule(static, 1) num_threads(threads)
  for (int64_t b = 0; b < num_blocks; ++b) {
    if (stopped.load(std::memory_order_relaxed)) continue;  // OpenMP loops cannot break
    if (cancellation != nullptr) {
      absl::Status status = cancellation->Check("index scan");
      if (!status.ok()) {
        std::lock_guard<std::mutex> lock(stop_mutex);
        if (!stopped.exchange(true)) result.status = std::move(status);
        continue;
      }
    }
    const Block& block = blocks[b];
#ifdef _OPENMP
    ThreadState& state = states[static_cast<size_t>(omp_get_thread_num())];
#else
    ThreadState& state = states[0];
#endif
    thread_local Eigen::MatrixXf buffer;
    Eigen::Ref<Eigen::MatrixXf> out = [&]() -> Eigen::Ref<Eigen::MatrixXf> {
      if (options.keep_scores) return result.scores.middleRows(block.row_begin, block.count);
      buffer.resize(block.count, q_count);
      return buffer;
    }();
    ScoreRows(block.data, block.count, dim(), dtype_, queries, out);
    if (options.row_scales != nullptr) {
      out.array().colwise() *=
          Eigen::Map<const Eigen::ArrayXf>(options.row_scales + block.row_begin, block.count);
    }
    for (const ScanTerm& term : options.terms) {
      thread_local Eigen::MatrixXf term_scores;
      term_scores.resize(block.count, q_count);
      const GradientIndex& other = *term.index;
      const Shard& shard = other.shards_[block.shard];
      const size_t other_row_bytes = static_cast<size_t>(other.dim()) * RowDTypeBytes(other.dtype_);
      ScoreRows(
          shard.data + static_cast<size_t>(block.row_begin - shard.row_begin) * other_row_bytes,
          block.count, other.dim(), other.dtype_, *term.queries, term_scores);
      if (term.row_scales != nullptr) {
        term_scores.array().colwise() *=
            Eigen::Map<const Eigen::ArrayXf>(term.row_scales + block.row_begin, block.count);
      }
      out += term_scores;
    }
    const uint8_t* deleted = deleted_.empty() ? nullptr : deleted_.data() + block.row_begin;
    for (int64_t q = 0; q < q_count; ++q) {
      float* column = out.col(q).data();
      if (deleted != nullptr) {
        for (int64_t i = 0; i < block.count; ++i) {
          if (deleted[i] != 0) column[i] = std::numeric_limits<float>::quiet_NaN();
        }
      }
      if (options.source_sums) {
        double* sums = state.sums.data() + q * num_sources;
        const int32_t* source = source_of_row_.data() + block.row_begin;
        for (int64_t i = 0; i < block.count; ++i) {
          if (deleted == nullptr || deleted[i] == 0) sums[source[i]] += column[i];
        }
      }
      // Only strictly positive scores are proponents and strictly negative ones opponents
      // (NaN, a deleted row, is neither).
      if (top_k > 0) state.tops[0].OfferColumn(q, block.row_begin, column, block.count);
    }
  }
  if (!result.status.ok()) return result;
  if (top_k > 0) {
    std::vector<QueryTopRows> tops;
    for (ThreadState& state : states) tops.push_back(std::move(state.tops[0]));
    result.proponents.resize(static_cast<size_t>(q_count));
    result.opponents.resize(static_cast<size_t>(q_count));
    for (int64_t q = 0; q < q_count; ++q) {
      result.proponents[q] = QueryTopRows::Merge(tops, q, top_k, true);
      result.opponents[q] = QueryTopRows::Merge(tops, q, top_k, false);
    }
  }
  if (options.source_sums) {
    result.source_sums.assign(static_cast<size_t>(q_count), std::vector<double>(num_sources, 0));
    for (const ThreadState& state : states) {
      for (int64_t q = 0; q < q_count; ++q) {
        for (size_t s = 0; s < num_sources; ++s) {
          result.source_sums[q][s] += state.sums[q * num_sources + s];
        }
      }
    }
  }
  return result;
}

absl::Status VerifyIndex(const std::string& dir,
                         const std::function<void(const FileCheck&)>& on_file,
                         const ProgressFn& progress) {
  if (IsEnsembleDir(dir)) return VerifyEnsemble(dir, on_file, progress);
  const std::string manifest_path = Join(dir, kManifestFile);
  std::error_code ec;
  if (!std::filesystem::exists(manifest_path, ec)) return MissingManifest(dir);
  std::string manifest_text;
  RETURN_IF_ERROR(ReadFile(manifest_path, &manifest_text));
  ASSIGN_OR_RETURN(Manifest m, ManifestFromJson(manifest_text, manifest_path));

  std::vector<std::pair<const FileEntry*, bool>> files;  // (entry, is a shard)
  for (const ShardEntry& shard : m.shards) files.push_back({&shard.file, true});
  for (const FileEntry* entry : {&m.samples, &m.factors, &m.model_weights, &m.model_config}) {
    files.push_back({entry, false});
  }
  if (!m.tombstones.file.empty()) files.push_back({&m.tombstones, false});
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
