#include "index/index_writer.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <system_error>
#include <unordered_set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace tda {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the index stores little-endian floats as they are in memory");

constexpr char kSamplesFile[] = "samples.tsv";
// The sample table while it is streamed; renamed to its generation's name by Finish.
constexpr char kSamplesInProgress[] = "samples-in-progress.tsv";
constexpr char kFactorsFile[] = "factors.safetensors";
constexpr char kModelWeightsFile[] = "model/model.safetensors";
constexpr char kModelConfigFile[] = "model/config.json";

std::string ShardName(size_t index, RowDType dtype) {
  char name[32];
  std::snprintf(name, sizeof(name), "grads-%05zu.%s", index, RowDTypeName(dtype));
  return name;
}

bool IsShardName(const std::string& name) {
  return absl::StartsWith(name, "grads-") &&
         (absl::EndsWith(name, ".f32") || absl::EndsWith(name, ".bf16") ||
          absl::EndsWith(name, ".f16"));
}

std::string Join(const std::string& dir, const std::string& file) { return dir + "/" + file; }

// Files a previous build may have left: its shards, its sample table, and temporaries of a
// build that was killed. Never the caller's factors or model files.
bool IsStaleBuildFile(const std::string& name) {
  const bool table = absl::StartsWith(name, "samples") || absl::StartsWith(name, "tombstones-");
  if (absl::StrContains(name, ".tmp-")) {
    return absl::StartsWith(name, "grads-") || table || absl::StartsWith(name, kManifestFile);
  }
  return IsShardName(name) ||
         (table && (absl::EndsWith(name, ".tsv") || absl::EndsWith(name, ".txt")));
}

bool HasFieldSeparator(const std::string& s) {
  return s.find_first_of("\t\n\r") != std::string::npos;
}

std::string SanitizePreview(std::string preview) {
  std::replace_if(
      preview.begin(), preview.end(), [](char c) { return c == '\t' || c == '\n' || c == '\r'; },
      ' ');
  return preview;
}

}  // namespace

absl::StatusOr<std::unique_ptr<IndexWriter>> IndexWriter::Create(const std::string& dir,
                                                                 int64_t dim,
                                                                 int64_t rows_per_shard,
                                                                 RowDType dtype,
                                                                 const IndexPart& part) {
  if (dim <= 0) return absl::InvalidArgumentError(absl::StrCat("index dim must be > 0, got ", dim));
  if (rows_per_shard <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("rows_per_shard must be > 0, got ", rows_per_shard));
  }
  if (part.rank < 0 || part.first_row < 0 || part.first_shard < 0 ||
      (part.rank == 0 && (part.first_row != 0 || part.first_shard != 0))) {
    return absl::InvalidArgumentError(absl::StrCat("invalid index part: rank ", part.rank,
                                                   ", first row ", part.first_row, ", first shard ",
                                                   part.first_shard));
  }
  RETURN_IF_ERROR(MakeDirectories(dir));
  std::unique_ptr<IndexWriter> writer(new IndexWriter());
  writer->dir_ = dir;
  writer->dim_ = dim;
  writer->rows_per_shard_ = rows_per_shard;
  writer->dtype_ = dtype;
  writer->part_ = part;
  writer->rows_ = part.first_row;
  writer->shard_begin_ = part.first_row;
  if (part.rank > 0) {  // rank 0 cleared the directory before this rank started
    RETURN_IF_ERROR(writer->OpenSampleTable());
    return writer;
  }
  // The manifest goes first and durably: from here on the directory holds no index that opens,
  // whatever happens to the rest of this build.
  std::error_code ec;
  std::filesystem::remove(Join(dir, kManifestFile), ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot remove old manifest ", Join(dir, kManifestFile), ": ", ec.message()));
  }
  RETURN_IF_ERROR(SyncDirectory(dir));
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    std::string name = entry.path().filename().string();
    if (!IsStaleBuildFile(name)) continue;
    std::error_code remove_ec;
    std::filesystem::remove(entry.path(), remove_ec);
    if (remove_ec) {
      return absl::InternalError(absl::StrCat("cannot remove stale index file ",
                                              entry.path().string(), ": ", remove_ec.message()));
    }
  }
  if (ec) {
    return absl::InternalError(absl::StrCat("cannot list directory ", dir, ": ", ec.message()));
  }
  RETURN_IF_ERROR(writer->OpenSampleTable());
  return writer;
}

absl::StatusOr<std::unique_ptr<IndexWriter>> IndexWriter::OpenForAppend(
    const std::string& dir, const Manifest& current, std::vector<SampleRecord> samples,
    int64_t rows_per_shard) {
  if (rows_per_shard <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("rows_per_shard must be > 0, got ", rows_per_shard));
  }
  if (static_cast<int64_t>(samples.size()) != current.rows) {
    return absl::InvalidArgumentError(absl::StrCat("OpenForAppend: ", samples.size(),
                                                   " sample records for ", current.rows, " rows"));
  }
  ASSIGN_OR_RETURN(RowDType dtype, ParseRowDType(current.dtype));
  std::unique_ptr<IndexWriter> writer(new IndexWriter());
  writer->dir_ = dir;
  writer->dim_ = current.dim;
  writer->rows_per_shard_ = rows_per_shard;
  writer->dtype_ = dtype;
  writer->rows_ = current.rows;
  writer->shard_begin_ = current.rows;
  writer->shards_ = current.shards;
  writer->replaced_samples_file_ = current.samples.file;
  RETURN_IF_ERROR(writer->OpenSampleTable());
  RETURN_IF_ERROR(writer->AppendSamples(samples));
  return writer;
}

absl::Status IndexWriter::OpenSampleTable() {
  samples_file_ = std::make_unique<AtomicFileWriter>();
  samples_hash_ = std::make_unique<Xxh3Stream>();
  return samples_file_->Open(
      Join(dir_, part_.rank == 0 ? kSamplesInProgress : SamplePartFileName(part_.rank)));
}

std::string IndexWriter::ShardFileName(size_t shard) const {
  return ShardName(static_cast<size_t>(part_.first_shard) + shard, dtype_);
}

absl::Status IndexWriter::AppendSamples(const std::vector<SampleRecord>& samples) {
  std::string lines;
  for (const SampleRecord& sample : samples) {
    absl::StrAppend(&lines, sample.id, "\t", sample.source, "\t", sample.label, "\t",
                    SanitizePreview(sample.preview), "\n");
  }
  return AppendSampleLines(lines);
}

absl::Status IndexWriter::AppendSampleLines(const std::string& lines) {
  for (size_t start = 0; start < lines.size();) {
    const size_t end = lines.find('\n', start);
    const std::string id = lines.substr(start, lines.find('\t', start) - start);
    if (!id_hashes_.insert(Xxh3(id)).second) repeated_ids_.insert(id);
    start = end == std::string::npos ? lines.size() : end + 1;
  }
  samples_hash_->Update(lines.data(), lines.size());
  return samples_file_->Append(lines.data(), lines.size());
}

absl::Status IndexWriter::CheckRepeatedIds(const std::string& table_path) const {
  if (repeated_ids_.empty()) return absl::OkStatus();
  // Ids whose XXH3 was seen before: a repeat, or (rarely) another id with the same hash. Count
  // them in the written table to tell.
  std::ifstream table(table_path, std::ios::binary);
  std::unordered_set<std::string> seen;
  std::string line;
  while (std::getline(table, line)) {
    const std::string id = line.substr(0, line.find('\t'));
    if (repeated_ids_.count(id) > 0 && !seen.insert(id).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("sample id '", id, "' appears more than once in index ", dir_));
    }
  }
  if (table.bad()) return absl::DataLossError(absl::StrCat("cannot read back ", table_path));
  return absl::OkStatus();
}

IndexWriter::~IndexWriter() = default;  // An uncommitted shard's temporary file is removed.

absl::Status IndexWriter::AppendRows(const float* rows, const std::vector<SampleRecord>& samples) {
  if (closed_) {
    return absl::FailedPreconditionError(
        absl::StrCat("IndexWriter for ", dir_, " is closed (finished, or an earlier call failed)"));
  }
  for (const SampleRecord& sample : samples) {
    if (sample.id.empty() || HasFieldSeparator(sample.id) || HasFieldSeparator(sample.source)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "sample id '", sample.id, "' / source '", sample.source,
          "': ids must be non-empty and ids and sources must not contain tabs or newlines"));
    }
  }
  if (samples.empty()) return absl::OkStatus();
  if (rows == nullptr) return absl::InvalidArgumentError("AppendRows: rows is null");

  const size_t row_bytes = static_cast<size_t>(dim_) * RowDTypeBytes(dtype_);
  const char* data = reinterpret_cast<const char*>(rows);
  if (dtype_ != RowDType::kF32) {
    const size_t count = samples.size() * static_cast<size_t>(dim_);
    converted_.resize(count * RowDTypeBytes(dtype_));
    ConvertFromF32(rows, count, dtype_, converted_.data());
    data = converted_.data();
  }
  int64_t remaining = static_cast<int64_t>(samples.size());
  while (remaining > 0) {
    if (!shard_) {
      shard_ = std::make_unique<AtomicFileWriter>();
      shard_hash_ = std::make_unique<Xxh3Stream>();
      shard_begin_ = rows_;
      absl::Status opened = shard_->Open(Join(dir_, ShardFileName(shards_.size())));
      if (!opened.ok()) {
        closed_ = true;
        return opened;
      }
    }
    int64_t n = std::min(remaining, rows_per_shard_ - (rows_ - shard_begin_));
    size_t bytes = static_cast<size_t>(n) * row_bytes;
    absl::Status appended = shard_->Append(data, bytes);
    if (!appended.ok()) {
      closed_ = true;
      return appended;
    }
    shard_hash_->Update(data, bytes);
    data += bytes;
    rows_ += n;
    remaining -= n;
    if (rows_ - shard_begin_ == rows_per_shard_) {
      absl::Status closed = CloseShard();
      if (!closed.ok()) {
        closed_ = true;
        return closed;
      }
    }
  }
  absl::Status appended = AppendSamples(samples);
  if (!appended.ok()) closed_ = true;
  return appended;
}

absl::Status IndexWriter::PublishSampleTable(const std::string& name) {
  if (samples_file_ != nullptr) {  // the first Finish: commit under the temporary name, check
    table_bytes_ = samples_file_->bytes_written();
    RETURN_IF_ERROR(samples_file_->Commit());
    samples_file_.reset();
    table_file_ = kSamplesInProgress;
    table_check_ = CheckRepeatedIds(Join(dir_, table_file_));
  }
  RETURN_IF_ERROR(table_check_);
  if (table_file_ == name) return absl::OkStatus();  // a retried Finish
  std::error_code ec;
  std::filesystem::rename(Join(dir_, table_file_), Join(dir_, name), ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot rename the sample table to ", Join(dir_, name), ": ", ec.message()));
  }
  table_file_ = name;
  return SyncDirectory(dir_);
}

absl::Status IndexWriter::CloseShard() {
  RETURN_IF_ERROR(shard_->Commit());
  ShardEntry entry;
  entry.file.file = ShardFileName(shards_.size());
  entry.file.bytes = shard_->bytes_written();
  entry.file.xxh3 = ChecksumHex(shard_hash_->Digest());
  entry.row_begin = shard_begin_;
  entry.row_end = rows_;
  shards_.push_back(std::move(entry));
  shard_.reset();
  shard_hash_.reset();
  shard_begin_ = rows_;
  return absl::OkStatus();
}

absl::StatusOr<IndexPartSummary> IndexWriter::FinishPart() {
  if (closed_ || part_.rank == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "IndexWriter for ", dir_, " is closed or not a part of rank > 0 (rank ", part_.rank, ")"));
  }
  closed_ = true;
  if (shard_) RETURN_IF_ERROR(CloseShard());
  IndexPartSummary summary;
  summary.rank = part_.rank;
  summary.first_row = part_.first_row;
  summary.end_row = rows_;
  summary.shards = shards_;
  summary.samples = {SamplePartFileName(part_.rank), samples_file_->bytes_written(),
                     ChecksumHex(samples_hash_->Digest())};
  RETURN_IF_ERROR(samples_file_->Commit());
  samples_file_.reset();
  return summary;
}

absl::Status IndexWriter::MergeParts(const std::vector<IndexPartSummary>& parts) {
  for (const IndexPartSummary& part : parts) {
    const std::string who = absl::StrCat("rank ", part.rank, "'s part of ", dir_);
    if (part.first_row != rows_ || part.end_row < part.first_row) {
      return absl::DataLossError(absl::StrCat(who, " holds rows [", part.first_row, ", ",
                                              part.end_row, "), expected them to start at ",
                                              rows_));
    }
    int64_t next = part.first_row;
    for (const ShardEntry& shard : part.shards) {
      std::error_code ec;
      const uint64_t bytes = std::filesystem::file_size(Join(dir_, shard.file.file), ec);
      if (ec || bytes != shard.file.bytes || shard.row_begin != next ||
          !IsShardName(shard.file.file)) {
        return absl::DataLossError(absl::StrCat(who, ": shard ", shard.file.file, " is missing, ",
                                                "misnamed or not ", shard.file.bytes, " bytes"));
      }
      next = shard.row_end;
    }
    if (next != part.end_row) {
      return absl::DataLossError(absl::StrCat(who, ": its shards end at row ", next));
    }
    // Its sample table, streamed into this one a line at a time, checked against its checksum.
    const std::string table = Join(dir_, part.samples.file);
    std::ifstream in(table, std::ios::binary);
    Xxh3Stream hash;
    uint64_t bytes = 0;
    std::string lines, line;
    while (std::getline(in, line)) {
      line += '\n';
      hash.Update(line.data(), line.size());
      bytes += line.size();
      lines += line;
      if (lines.size() >= (1 << 20)) {
        RETURN_IF_ERROR(AppendSampleLines(lines));
        lines.clear();
      }
    }
    if (in.bad() || bytes != part.samples.bytes ||
        ChecksumHex(hash.Digest()) != part.samples.xxh3) {
      return absl::DataLossError(absl::StrCat(who, ": its sample table ", table,
                                              " is unreadable or does not match its checksum"));
    }
    RETURN_IF_ERROR(AppendSampleLines(lines));
    shards_.insert(shards_.end(), part.shards.begin(), part.shards.end());
    rows_ = part.end_row;
    merged_tables_.push_back(table);
  }
  return absl::OkStatus();
}

absl::Status IndexWriter::Finish(Manifest manifest, const std::vector<IndexPartSummary>& parts) {
  if (closed_ || part_.rank != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("IndexWriter for ", dir_,
                     " is closed (finished, or an earlier call failed) or is not rank 0's"));
  }
  if (shard_) RETURN_IF_ERROR(CloseShard());
  if (!parts.empty()) {
    if (samples_file_ == nullptr) {
      return absl::FailedPreconditionError("parts can be merged only by the first Finish");
    }
    absl::Status merged = MergeParts(parts);
    if (!merged.ok()) {
      closed_ = true;
      return merged;
    }
  }

  const std::string samples_file = SamplesFileName(manifest.generation);
  RETURN_IF_ERROR(PublishSampleTable(samples_file));

  manifest.format_version = RequiredFormatVersion(manifest);
  manifest.dtype = RowDTypeName(dtype_);
  manifest.rows = rows_;
  manifest.dim = dim_;
  manifest.shards = shards_;
  manifest.samples = {samples_file, table_bytes_, ChecksumHex(samples_hash_->Digest())};
  ASSIGN_OR_RETURN(manifest.factors, DescribeFile(dir_, kFactorsFile));
  ASSIGN_OR_RETURN(manifest.model_weights, DescribeFile(dir_, kModelWeightsFile));
  ASSIGN_OR_RETURN(manifest.model_config, DescribeFile(dir_, kModelConfigFile));

  const std::string path = Join(dir_, kManifestFile);
  std::string text = ManifestToJson(manifest);
  // Never write a manifest this reader would refuse (e.g. layer_dims that do not sum to dim).
  absl::StatusOr<Manifest> reread = ManifestFromJson(text, path);
  if (!reread.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("refusing to write an invalid manifest: ", reread.status().message()));
  }
  RETURN_IF_ERROR(WriteFileAtomically(path, text));
  closed_ = true;
  for (const std::string& table : merged_tables_) {
    std::error_code ec;  // merged into the listed table: a leftover would only waste space
    std::filesystem::remove(table, ec);
  }
  if (!replaced_samples_file_.empty() && replaced_samples_file_ != samples_file) {
    std::error_code ec;  // Unlisted now; a leftover would only waste space.
    std::filesystem::remove(Join(dir_, replaced_samples_file_), ec);
  }
  return absl::OkStatus();
}

std::string SamplesFileName(int64_t generation) {
  if (generation == 0) return kSamplesFile;
  char name[40];
  std::snprintf(name, sizeof(name), "samples-%05lld.tsv", static_cast<long long>(generation));
  return name;
}

std::string TombstonesFileName(int64_t generation) {
  char name[40];
  std::snprintf(name, sizeof(name), "tombstones-%05lld.txt", static_cast<long long>(generation));
  return name;
}

absl::StatusOr<FileEntry> DescribeFile(const std::string& dir, const std::string& relative_path) {
  const std::string path = Join(dir, relative_path);
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return absl::FailedPreconditionError(
        absl::StrCat("index file ", relative_path, " is missing from ", dir,
                     " (it must be written into the index directory before the manifest)"));
  }
  uint64_t bytes = std::filesystem::file_size(path, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot stat ", path, ": ", ec.message()));
  ASSIGN_OR_RETURN(uint64_t checksum, FileXxh3(path));
  return FileEntry{relative_path, bytes, ChecksumHex(checksum)};
}

}  // namespace tda
