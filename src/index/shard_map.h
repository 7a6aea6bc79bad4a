// The shard map of a sharded index (shardmap.json): which server serves which rows of the
// whole, for `tda-server --router` (server/router_service.h). `tda index split` writes a
// template beside the shards (placeholder addresses 127.0.0.1:50061, 50062, ...).
//
//   {"total_rows": N, "parent_manifest_xxh3": "<16 hex>",
//    "local_index": "shard-0",                  // model and factors for the router's queries
//    "security": {"tls_ca_file": "", "tls_cert_file": "", "tls_key_file": "",
//                 "token_file": ""},             // how the router calls the shards (optional)
//    "shards": [{"address": "HOST:PORT", "index": "", "first_row": 0, "rows": R,
//                "dir": "shard-0"}, ...]}      // dir: informational; index: served name
//
// Relative paths (local_index, the security files) are relative to the shard map's directory.
// Reading checks that the shards tile [0, total_rows) in order. Thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace tda {

struct ShardMapEntry {
  std::string address;  // HOST:PORT of the shard's tda-server
  std::string index;    // the served index name to ask ("" when the server serves one)
  int64_t first_row = 0;
  int64_t rows = 0;
  std::string dir;  // where the split wrote it (informational)
};

struct ShardMap {
  int64_t total_rows = 0;
  std::string parent_manifest_xxh3;
  std::string local_index;                                           // absolute after ReadShardMap
  std::string tls_ca_file, tls_cert_file, tls_key_file, token_file;  // absolute or empty
  std::vector<ShardMapEntry> shards;
};

// "[first_row, first_row + rows) at address", for messages.
std::string DescribeShard(const ShardMapEntry& shard);

std::string ShardMapToJson(const ShardMap& map);
// kInvalidArgument naming the file and the field for malformed JSON, missing fields, or
// shards that do not tile [0, total_rows); kNotFound when the file is missing.
[[nodiscard]] absl::StatusOr<ShardMap> ReadShardMap(const std::string& path);

}  // namespace tda
