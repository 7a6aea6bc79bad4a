#include "index/index_update.h"

#include <cstdio>
#include <filesystem>
#include <memory>
#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "common/checksum.h"
#include "common/status_macros.h"
#include "grad/projection.h"
#include "index/gradient_index.h"
#include "index/gradient_rows.h"
#include "index/index_projection.h"
#include "index/index_writer.h"
#include "model/model.h"

namespace tda {
namespace {

// After the new manifest is in place: the old manifest's file that the new one replaced.
void RemoveReplaced(const std::string& dir, const std::string& old_file,
                    const std::string& new_file) {
  if (old_file.empty() || old_file == new_file) return;
  std::error_code ec;  // Unlisted now; a leftover would only waste space.
  std::filesystem::remove(dir + "/" + old_file, ec);
}

}  // namespace

absl::Status DeleteFromIndex(const std::string& dir, const std::vector<std::string>& ids) {
  if (ids.empty()) return absl::InvalidArgumentError("no sample ids to delete");
  ASSIGN_OR_RETURN(std::unique_ptr<GradientIndex> index,
                   GradientIndex::Open(dir, GradientIndex::Verify::kFull));
  std::vector<uint8_t> deleted(static_cast<size_t>(index->rows()), 0);
  for (int64_t r = 0; r < index->rows(); ++r) deleted[r] = index->is_deleted(r) ? 1 : 0;
  for (const std::string& id : ids) {
    const int64_t row = index->FindRow(id);
    if (row < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot delete '", id, "': index ", dir, " has no sample with that id"));
    }
    deleted[static_cast<size_t>(row)] = 1;
  }
  std::string table;
  for (int64_t r = 0; r < index->rows(); ++r) {
    if (deleted[r] != 0) absl::StrAppend(&table, r, "\t", index->sample(r).id, "\n");
  }
  Manifest manifest = index->manifest();
  const std::string old_tombstones = manifest.tombstones.file;
  manifest.generation += 1;
  manifest.tombstones = {TombstonesFileName(manifest.generation), table.size(),
                         ChecksumHex(Xxh3(table))};
  RETURN_IF_ERROR(WriteFileAtomically(dir + "/" + manifest.tombstones.file, table));
  const std::string manifest_path = dir + "/" + kManifestFile;
  const std::string text = ManifestToJson(manifest);
  RETURN_IF_ERROR(ManifestFromJson(text, manifest_path).status());
  RETURN_IF_ERROR(WriteFileAtomically(manifest_path, text));
  RemoveReplaced(dir, old_tombstones, manifest.tombstones.file);
  return absl::OkStatus();
}

absl::Status AppendToIndex(const std::string& dir, const Dataset& data, int64_t batch_size,
                           const ProgressFn& progress) {
  if (data.size() == 0) return absl::InvalidArgumentError("no samples to append");
  ASSIGN_OR_RETURN(std::unique_ptr<GradientIndex> index,
                   GradientIndex::Open(dir, GradientIndex::Verify::kFull));
  const Manifest& current = index->manifest();
  ASSIGN_OR_RETURN(std::unique_ptr<Model> model, LoadModel(dir + "/model"));
  if (model->Fingerprint() != current.model_fingerprint) {
    return absl::DataLossError(absl::StrCat("index ", dir, ": model fingerprint ",
                                            model->Fingerprint(), " != manifest ",
                                            current.model_fingerprint));
  }
  RETURN_IF_ERROR(CheckDataFitsModel(data, model->config(), "index append"));
  ASSIGN_OR_RETURN(std::unique_ptr<Projection> index_projection,
                   IndexProjection(dir, current, *model));
  const Projection& projection = *index_projection;
  std::unordered_set<std::string> new_ids;
  for (const std::string& id : data.ids) {
    if (index->FindRow(id) >= 0 || !new_ids.insert(id).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          "cannot append '", id, "': index ", dir,
          index->FindRow(id) >= 0 ? " already holds it (ids stay unique, deleted or not)"
                                  : " would get it twice"));
    }
  }
  std::vector<SampleRecord> samples;
  samples.reserve(static_cast<size_t>(index->rows()));
  for (int64_t r = 0; r < index->rows(); ++r) samples.push_back(index->sample(r));
  // New shards as large as the build cut them (the first of several shards is full).
  int64_t rows_per_shard = 1 << 16;
  if (current.shards.size() > 1) {
    rows_per_shard = current.shards.front().row_end - current.shards.front().row_begin;
  }
  ASSIGN_OR_RETURN(std::unique_ptr<IndexWriter> writer,
                   IndexWriter::OpenForAppend(dir, current, std::move(samples), rows_per_shard));
  RETURN_IF_ERROR(WriteGradientRows(*model, projection, data, batch_size, writer.get(), progress));
  Manifest next = current;
  next.generation += 1;
  return writer->Finish(std::move(next));
}

}  // namespace tda
