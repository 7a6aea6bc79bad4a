#include "index/shard_map.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "common/status_macros.h"

namespace tda {
namespace {

using json = nlohmann::json;

absl::Status Malformed(const std::string& path, const std::string& what) {
  return absl::InvalidArgumentError(
      absl::StrCat("shard map ", path, ": ", what,
                   " (see the template 'tda index split' writes, shardmap.json)"));
}

// The string field `key` of `object` ("" when absent and optional).
absl::StatusOr<std::string> StringField(const json& object, const char* key, bool required,
                                        const std::string& where, const std::string& path) {
  auto it = object.find(key);
  if (it == object.end()) {
    if (required) return Malformed(path, absl::StrCat("field '", where, key, "' is missing"));
    return std::string();
  }
  if (!it->is_string())
    return Malformed(path, absl::StrCat("field '", where, key, "' must be a string"));
  return it->get<std::string>();
}

absl::StatusOr<int64_t> RowField(const json& object, const char* key, const std::string& where,
                                 const std::string& path) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_number_integer() || it->get<int64_t>() < 0) {
    return Malformed(path, absl::StrCat("field '", where, key, "' must be an integer >= 0"));
  }
  return it->get<int64_t>();
}

std::string Resolve(const std::string& base_dir, const std::string& file) {
  if (file.empty() || file.front() == '/') return file;
  return base_dir + "/" + file;
}

}  // namespace

std::string DescribeShard(const ShardMapEntry& shard) {
  return absl::StrCat("shard at ", shard.address, " (rows [", shard.first_row, ", ",
                      shard.first_row + shard.rows, "))");
}

std::string ShardMapToJson(const ShardMap& map) {
  json shards = json::array();
  for (const ShardMapEntry& s : map.shards) {
    shards.push_back({{"address", s.address},
                      {"index", s.index},
                      {"first_row", s.first_row},
                      {"rows", s.rows},
                      {"dir", s.dir}});
  }
  json root = {{"total_rows", map.total_rows},
               {"parent_manifest_xxh3", map.parent_manifest_xxh3},
               {"local_index", map.local_index},
               {"security",
                {{"tls_ca_file", map.tls_ca_file},
                 {"tls_cert_file", map.tls_cert_file},
                 {"tls_key_file", map.tls_key_file},
                 {"token_file", map.token_file}}},
               {"shards", std::move(shards)}};
  return root.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

absl::StatusOr<ShardMap> ReadShardMap(const std::string& path) {
  std::string text;
  RETURN_IF_ERROR(ReadFile(path, &text));
  const json root = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object()) return Malformed(path, "not a JSON object");
  const std::string base = std::filesystem::absolute(path).parent_path().string();
  ShardMap map;
  ASSIGN_OR_RETURN(map.total_rows, RowField(root, "total_rows", "", path));
  ASSIGN_OR_RETURN(map.parent_manifest_xxh3,
                   StringField(root, "parent_manifest_xxh3", true, "", path));
  ASSIGN_OR_RETURN(std::string local, StringField(root, "local_index", true, "", path));
  if (local.empty()) return Malformed(path, "field 'local_index' is empty");
  map.local_index = Resolve(base, local);
  if (auto security = root.find("security"); security != root.end()) {
    if (!security->is_object()) return Malformed(path, "field 'security' must be an object");
    std::string* files[] = {&map.tls_ca_file, &map.tls_cert_file, &map.tls_key_file,
                            &map.token_file};
    const char* keys[] = {"tls_ca_file", "tls_cert_file", "tls_key_file", "token_file"};
    for (int i = 0; i < 4; ++i) {
      ASSIGN_OR_RETURN(std::string file, StringField(*security, keys[i], false, "security.", path));
      *files[i] = Resolve(base, file);
    }
  }
  auto shards = root.find("shards");
  if (shards == root.end() || !shards->is_array() || shards->empty()) {
    return Malformed(path, "field 'shards' must be a non-empty array");
  }
  int64_t next_row = 0;
  for (size_t i = 0; i < shards->size(); ++i) {
    const json& entry = (*shards)[i];
    const std::string where = absl::StrCat("shards[", i, "].");
    if (!entry.is_object())
      return Malformed(path, absl::StrCat("shards[", i, "] must be an object"));
    ShardMapEntry shard;
    ASSIGN_OR_RETURN(shard.address, StringField(entry, "address", true, where, path));
    ASSIGN_OR_RETURN(shard.index, StringField(entry, "index", false, where, path));
    ASSIGN_OR_RETURN(shard.dir, StringField(entry, "dir", false, where, path));
    ASSIGN_OR_RETURN(shard.first_row, RowField(entry, "first_row", where, path));
    ASSIGN_OR_RETURN(shard.rows, RowField(entry, "rows", where, path));
    if (shard.first_row != next_row || shard.rows == 0) {
      return Malformed(path,
                       absl::StrCat(where, "first_row is ", shard.first_row, " with ", shard.rows,
                                    " rows; expected a non-empty shard at row ", next_row,
                                    " (shards list contiguous row ranges in order)"));
    }
    next_row += shard.rows;
    map.shards.push_back(std::move(shard));
  }
  if (next_row != map.total_rows) {
    return Malformed(
        path, absl::StrCat("the shards cover ", next_row, " rows, total_rows is ", map.total_rows));
  }
  return map;
}

}  // namespace tda
