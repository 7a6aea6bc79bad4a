// The manifest of a gradient index directory (docs/index_format.md): what the index holds and
// the checksum of every other file in it. It is written last and atomically, so an index
// without a valid manifest does not exist. Readers refuse newer format versions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace tda {

// Version 2 adds deleted rows (a tombstone file); a manifest without one is written as version
// 1, so older readers keep reading indexes that have no deletions.
inline constexpr int kIndexFormatVersion = 2;
inline constexpr char kManifestFile[] = "manifest.json";

struct FileEntry {
  std::string file;       // relative to the index directory
  uint64_t bytes = 0;
  std::string xxh3;       // 16 hex digits
};

struct ShardEntry {
  FileEntry file;
  int64_t row_begin = 0;  // first row (inclusive)
  int64_t row_end = 0;    // last row (exclusive)
};

// A shard index written by `tda index split`: its rows are rows [first_row, first_row + rows)
// of a parent index of total_rows rows, whose manifest.json had XXH3 parent_manifest_xxh3.
struct ShardOf {
  int64_t first_row = 0;
  int64_t total_rows = 0;
  std::string parent_manifest_xxh3;  // 16 hex digits
};

struct Manifest {
  int format_version = kIndexFormatVersion;
  std::string model_fingerprint;
  std::string dataset;          // e.g. "fashion-mnist/train"
  std::string data_dir;         // where the training data was read from
  std::string dtype = "f32";
  int64_t rows = 0;
  int64_t dim = 0;              // projected gradient dimension per row
  // Projection (see grad/projection.h)
  std::string projection_kind = "kronecker-gaussian";
  int64_t projection_dim_per_side = 0;  // 0 = exact gradients
  uint64_t projection_seed = 0;
  std::vector<int64_t> layer_dims;      // projected size of each tracked layer
  // TrackStar's Adam correction of every gradient before projection (grad/adam_correction.h):
  // "" none, "exact" or "rank1"; the optimizer state is model/optimizer_state.safetensors.
  std::string adam_correction;
  // Curvature
  std::string fisher = "true";
  int64_t factor_examples = 0;
  std::vector<ShardEntry> shards;
  FileEntry factors;            // factors.safetensors
  FileEntry samples;            // samples.tsv
  FileEntry model_weights;      // model/model.safetensors
  FileEntry model_config;       // model/config.json
  // Deleted rows (tombstones-NNNNN.txt); file empty when no row is deleted. Format version 2.
  FileEntry tombstones;
  // Incremented by every append or delete; names the sample and tombstone files it writes.
  int64_t generation = 0;
  // Only for shards of a split index ("shard_of"; readers before it ignore the field).
  std::optional<ShardOf> shard_of;
};

// The version ManifestToJson writes: 2 when rows are deleted, else 1.
int RequiredFormatVersion(const Manifest& manifest);

// Writes format_version RequiredFormatVersion(manifest) (manifest.format_version is ignored).
std::string ManifestToJson(const Manifest& manifest);
// kDataLoss for malformed JSON or inconsistent fields, kFailedPrecondition for a newer
// format version; messages name `source`.
[[nodiscard]] absl::StatusOr<Manifest> ManifestFromJson(const std::string& text, const std::string& source);

}  // namespace tda
