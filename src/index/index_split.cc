#include "index/index_split.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "common/checksum.h"
#include "common/status_macros.h"
#include "index/gradient_index.h"
#include "index/index_writer.h"
#include "index/shard_map.h"

namespace tda {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kRowsPerBatch = 4096;
constexpr int kFirstTemplatePort = 50061;

absl::Status CheckEmptyOutput(const std::string& out_dir) {
  std::error_code ec;
  if (!fs::exists(out_dir, ec)) return absl::OkStatus();
  if (!fs::is_directory(out_dir, ec)) {
    return absl::FailedPreconditionError(
        absl::StrCat("--out ", out_dir, " exists and is not a directory; choose a new path"));
  }
  if (!fs::is_empty(out_dir, ec)) {
    return absl::FailedPreconditionError(
        absl::StrCat("--out ", out_dir,
                     " is not empty; split into a new or empty directory (nothing there "
                     "is overwritten)"));
  }
  return absl::OkStatus();
}

// Copies src to dst through an atomic write (streamed in 1 MiB pieces).
absl::Status CopyFileAtomically(const std::string& src, const std::string& dst) {
  std::ifstream in(src, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", src));
  AtomicFileWriter out;
  RETURN_IF_ERROR(out.Open(dst));
  std::vector<char> buffer(1 << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    if (in.gcount() > 0)
      RETURN_IF_ERROR(out.Append(buffer.data(), static_cast<size_t>(in.gcount())));
  }
  if (in.bad()) return absl::DataLossError(absl::StrCat("error reading ", src));
  return out.Commit();
}

// The model directory's files and the factors, into the shard directory.
absl::Status CopyModelAndFactors(const std::string& parent, const std::string& shard) {
  RETURN_IF_ERROR(MakeDirectories(shard + "/model"));
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(parent + "/model", ec)) {
    if (!entry.is_regular_file()) continue;
    const std::string name = entry.path().filename().string();
    RETURN_IF_ERROR(CopyFileAtomically(entry.path().string(), shard + "/model/" + name));
  }
  if (ec)
    return absl::InternalError(absl::StrCat("cannot list ", parent, "/model: ", ec.message()));
  return CopyFileAtomically(parent + "/factors.safetensors", shard + "/factors.safetensors");
}

// The shard's copies must be the parent's bytes.
absl::Status CheckCopied(const Manifest& parent, const Manifest& shard, const std::string& dir) {
  const std::pair<const FileEntry*, const FileEntry*> pairs[] = {
      {&parent.factors, &shard.factors},
      {&parent.model_weights, &shard.model_weights},
      {&parent.model_config, &shard.model_config}};
  for (const auto& [want, got] : pairs) {
    if (want->xxh3 != got->xxh3 || want->bytes != got->bytes) {
      return absl::DataLossError(absl::StrCat("shard ", dir, ": copied ", got->file,
                                              " does not match the parent index's checksum"));
    }
  }
  return absl::OkStatus();
}

absl::Status WriteShard(const GradientIndex& parent, const SplitShard& range,
                        const ShardOf& shard_of, int64_t* rows_done, int64_t total,
                        const ProgressFn& progress) {
  const Manifest& pm = parent.manifest();
  const int64_t rows_per_shard =
      pm.shards.size() > 1 ? pm.shards.front().row_end - pm.shards.front().row_begin : 1 << 16;
  ASSIGN_OR_RETURN(std::unique_ptr<IndexWriter> writer,
                   IndexWriter::Create(range.dir, parent.dim(), rows_per_shard, parent.dtype()));
  RETURN_IF_ERROR(CopyModelAndFactors(parent.dir(), range.dir));
  std::vector<float> rows;
  std::vector<SampleRecord> samples;
  std::string tombstones;
  for (int64_t begin = 0; begin < range.rows; begin += kRowsPerBatch) {
    const int64_t count = std::min(kRowsPerBatch, range.rows - begin);
    rows.resize(static_cast<size_t>(count * parent.dim()));
    samples.clear();
    for (int64_t r = 0; r < count; ++r) {
      const int64_t row = range.first_row + begin + r;
      if (!parent.CopyRow(row, &rows[static_cast<size_t>(r * parent.dim())])) {
        return absl::InternalError(absl::StrCat("row ", row, " is out of range"));
      }
      samples.push_back(parent.sample(row));
      if (parent.is_deleted(row))
        absl::StrAppend(&tombstones, begin + r, "\t", samples.back().id, "\n");
    }
    RETURN_IF_ERROR(writer->AppendRows(rows.data(), samples));
    *rows_done += count;
    ReportProgress(progress, "split", *rows_done, total);
  }
  Manifest manifest;
  manifest.model_fingerprint = pm.model_fingerprint;
  manifest.dataset = pm.dataset;
  manifest.data_dir = pm.data_dir;
  manifest.projection_kind = pm.projection_kind;
  manifest.projection_dim_per_side = pm.projection_dim_per_side;
  manifest.projection_seed = pm.projection_seed;
  manifest.layer_dims = pm.layer_dims;
  manifest.fisher = pm.fisher;
  manifest.factor_examples = pm.factor_examples;
  manifest.shard_of = shard_of;
  if (!tombstones.empty()) {
    manifest.tombstones = {TombstonesFileName(0), tombstones.size(), ChecksumHex(Xxh3(tombstones))};
    RETURN_IF_ERROR(WriteFileAtomically(range.dir + "/" + manifest.tombstones.file, tombstones));
  }
  RETURN_IF_ERROR(writer->Finish(std::move(manifest)));
  // Reopened with full verification: what a server of the shard will read.
  ASSIGN_OR_RETURN(std::unique_ptr<GradientIndex> written,
                   GradientIndex::Open(range.dir, GradientIndex::Verify::kFull));
  return CheckCopied(pm, written->manifest(), range.dir);
}

}  // namespace

SplitShard ShardRange(int64_t total_rows, int64_t shards, int64_t shard) {
  // In 128 bits: total_rows * shard overflows int64 for 10^10 rows x 10^9 shards only, but
  // cheap to rule out.
  const auto at = [&](int64_t i) {
    return static_cast<int64_t>(static_cast<__int128>(total_rows) * i / shards);
  };
  return {"", at(shard), at(shard + 1) - at(shard)};
}

absl::StatusOr<SplitResult> SplitIndex(const std::string& index_dir, int64_t shards,
                                       const std::string& out_dir, const ProgressFn& progress) {
  RETURN_IF_ERROR(CheckEmptyOutput(out_dir));
  ASSIGN_OR_RETURN(std::unique_ptr<GradientIndex> parent,
                   GradientIndex::Open(index_dir, GradientIndex::Verify::kFull));
  if (shards < 1 || shards > parent->rows()) {
    return absl::InvalidArgumentError(absl::StrCat("--shards must be in [1, ", parent->rows(),
                                                   "] (the index's rows), got ", shards));
  }
  std::string manifest_text;
  RETURN_IF_ERROR(ReadFile(index_dir + "/" + kManifestFile, &manifest_text));
  SplitResult result;
  result.total_rows = parent->rows();
  result.parent_manifest_xxh3 = ChecksumHex(Xxh3(manifest_text));
  RETURN_IF_ERROR(MakeDirectories(out_dir));
  ShardMap map;
  map.total_rows = result.total_rows;
  map.parent_manifest_xxh3 = result.parent_manifest_xxh3;
  map.local_index = "shard-0";
  int64_t rows_done = 0;
  for (int64_t i = 0; i < shards; ++i) {
    SplitShard range = ShardRange(parent->rows(), shards, i);
    range.dir = absl::StrCat(out_dir, "/shard-", i);
    const ShardOf shard_of{range.first_row, result.total_rows, result.parent_manifest_xxh3};
    RETURN_IF_ERROR(WriteShard(*parent, range, shard_of, &rows_done, result.total_rows, progress));
    map.shards.push_back({absl::StrCat("127.0.0.1:", kFirstTemplatePort + i), "", range.first_row,
                          range.rows, absl::StrCat("shard-", i)});
    result.shards.push_back(std::move(range));
  }
  result.shard_map_path = out_dir + "/" + kShardMapFile;
  RETURN_IF_ERROR(WriteFileAtomically(result.shard_map_path, ShardMapToJson(map)));
  return result;
}

}  // namespace tda
