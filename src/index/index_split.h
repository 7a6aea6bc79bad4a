// `tda index split`: cuts a gradient index into K shard indexes by contiguous row ranges, for
// sharded serving (a router over shard servers, server/router_service.h).
//
// Shard i of K holds rows [i*N/K, (i+1)*N/K) of the N rows, in DIR/shard-i: an ordinary index
// (written by IndexWriter: its own manifest and checksums) with the parent's model, curvature
// factors, dtype and rows_per_shard, only its rows, their sample records and their deletions,
// and a manifest "shard_of" entry (index/manifest.h: ShardOf) naming its place in the whole and
// the XXH3 of the parent's manifest.json. DIR/shardmap.json is a template for `tda-server
// --router` (server/shard_map.h) with one shard per directory and placeholder addresses.
//
// The parent is opened with full checksum verification; the copied model and factor files are
// checked against the parent's checksums after they are written. Every file is written
// atomically; DIR must not exist or be empty (nothing tda did not write is ever overwritten).
// A split that fails leaves shard directories without a manifest (no index opens there).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/progress.h"

namespace tda {

inline constexpr char kShardMapFile[] = "shardmap.json";

struct SplitShard {
  std::string dir;  // out_dir/shard-i
  int64_t first_row = 0;
  int64_t rows = 0;
};

struct SplitResult {
  std::vector<SplitShard> shards;
  int64_t total_rows = 0;
  std::string parent_manifest_xxh3;
  std::string shard_map_path;  // out_dir/shardmap.json
};

// The row range of shard `shard` of `shards` over `total_rows` rows: [first, first + rows).
SplitShard ShardRange(int64_t total_rows, int64_t shards, int64_t shard);

// kInvalidArgument when shards is not in [1, rows]; kFailedPrecondition when out_dir exists and
// is not an empty directory; the index's errors (kNotFound, kDataLoss) when it does not open.
// Progress: ("split", rows written, total rows).
[[nodiscard]] absl::StatusOr<SplitResult> SplitIndex(const std::string& index_dir, int64_t shards,
                                                     const std::string& out_dir,
                                                     const ProgressFn& progress = {});

}  // namespace tda
