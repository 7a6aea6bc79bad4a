#include "index/manifest.h"

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace tda {
namespace {

using json = nlohmann::json;

// Element size of a row dtype, or 0 for an unknown name.
size_t RowDTypeSize(const std::string& dtype) {
  if (dtype == "f32") return 4;
  if (dtype == "bf16" || dtype == "f16") return 2;
  return 0;
}

// A file name must stay inside the index directory: relative, no "." or ".." components.
bool IsRelativeInside(const std::string& file) {
  if (file.empty() || file.front() == '/') return false;
  size_t start = 0;
  while (start <= file.size()) {
    size_t end = file.find('/', start);
    if (end == std::string::npos) end = file.size();
    std::string part = file.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

json FileEntryToJson(const FileEntry& entry) {
  return {{"file", entry.file}, {"bytes", entry.bytes}, {"xxh3", entry.xxh3}};
}

// Reads typed fields of one JSON object; every error is kDataLoss naming the manifest file and
// the field's path inside it (e.g. "shards[2].bytes").
class FieldReader {
 public:
  FieldReader(const json& object, const std::string& source, std::string path)
      : object_(object), source_(source), path_(std::move(path)) {}

  absl::Status Check() const {
    if (!object_.is_object()) return Error(path_.empty() ? "(top level)" : path_, "an object");
    return absl::OkStatus();
  }

  absl::StatusOr<const json*> Field(const char* key) const {
    auto it = object_.find(key);
    if (it == object_.end()) {
      return absl::DataLossError(
          absl::StrCat("index manifest ", source_, ": field '", Name(key), "' is missing"));
    }
    return &*it;
  }

  absl::Status String(const char* key, std::string* out) const {
    ASSIGN_OR_RETURN(const json* value, Field(key));
    if (!value->is_string()) return Error(Name(key), "a string", *value);
    *out = value->get<std::string>();
    return absl::OkStatus();
  }

  absl::Status Int64(const char* key, int64_t* out, int64_t min_value = 0) const {
    ASSIGN_OR_RETURN(const json* value, Field(key));
    return ToInt64(*value, Name(key), out, min_value);
  }

  absl::Status UInt64(const char* key, uint64_t* out) const {
    ASSIGN_OR_RETURN(const json* value, Field(key));
    if (value->is_number_unsigned()) {
      *out = value->get<uint64_t>();
      return absl::OkStatus();
    }
    if (value->is_number_integer() && value->get<int64_t>() >= 0) {
      *out = static_cast<uint64_t>(value->get<int64_t>());
      return absl::OkStatus();
    }
    return Error(Name(key), "a non-negative integer", *value);
  }

  absl::Status ToInt64(const json& value, const std::string& name, int64_t* out,
                       int64_t min_value) const {
    if (value.is_number_unsigned()) {
      if (value.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return Error(name, "an integer that fits in 64 bits", value);
      }
    } else if (!value.is_number_integer()) {
      return Error(name, "an integer", value);
    }
    int64_t v = value.get<int64_t>();
    if (v < min_value) return Error(name, absl::StrCat("an integer >= ", min_value), value);
    *out = v;
    return absl::OkStatus();
  }

  absl::Status FileEntryField(const char* key, FileEntry* out) const {
    ASSIGN_OR_RETURN(const json* value, Field(key));
    FieldReader entry(*value, source_, Name(key));
    return entry.ReadFileEntry(out);
  }

  absl::Status ReadFileEntry(FileEntry* out) const {
    RETURN_IF_ERROR(Check());
    RETURN_IF_ERROR(String("file", &out->file));
    RETURN_IF_ERROR(UInt64("bytes", &out->bytes));
    RETURN_IF_ERROR(String("xxh3", &out->xxh3));
    if (!IsRelativeInside(out->file)) {
      return absl::DataLossError(absl::StrCat("index manifest ", source_, ": field '", Name("file"),
                                              "' must be a relative path inside "
                                              "the index directory, found '",
                                              out->file, "'"));
    }
    bool hex = out->xxh3.size() == 16;
    for (char c : out->xxh3) hex = hex && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
    if (!hex) {
      return absl::DataLossError(absl::StrCat("index manifest ", source_, ": field '", Name("xxh3"),
                                              "' must be 16 lowercase hex digits, "
                                              "found '",
                                              out->xxh3, "'"));
    }
    return absl::OkStatus();
  }

  std::string Name(const char* key) const {
    return path_.empty() ? std::string(key) : absl::StrCat(path_, ".", key);
  }

  absl::Status Error(const std::string& name, const std::string& expected,
                     const json& found) const {
    return absl::DataLossError(
        absl::StrCat("index manifest ", source_, ": field '", name, "' must be ", expected,
                     ", found ", found.dump(-1, ' ', false, json::error_handler_t::replace)));
  }
  absl::Status Error(const std::string& name, const std::string& expected) const {
    return Error(name, expected, object_);
  }

 private:
  const json& object_;
  const std::string& source_;
  std::string path_;
};

absl::Status Inconsistent(const std::string& source, const std::string& what) {
  return absl::DataLossError(absl::StrCat("index manifest ", source, ": ", what));
}

// Cross-field checks: shards tile [0, rows) with the right sizes, layer dims sum to dim, file
// names are distinct.
absl::Status Validate(const Manifest& m, const std::string& source) {
  size_t element = RowDTypeSize(m.dtype);
  if (element == 0) {
    return Inconsistent(source,
                        absl::StrCat("dtype must be f32, bf16 or f16, found '", m.dtype, "'"));
  }
  if (m.dim <= 0) return Inconsistent(source, absl::StrCat("dim must be > 0, found ", m.dim));
  int64_t layer_sum = 0;
  for (int64_t d : m.layer_dims) {
    if (d <= 0 || __builtin_add_overflow(layer_sum, d, &layer_sum)) {
      return Inconsistent(source, absl::StrCat("layer_dims must be positive, found ", d));
    }
  }
  if (layer_sum != m.dim) {
    return Inconsistent(source,
                        absl::StrCat("layer_dims sum to ", layer_sum, " but dim is ", m.dim));
  }
  int64_t next_row = 0;
  for (size_t i = 0; i < m.shards.size(); ++i) {
    const ShardEntry& shard = m.shards[i];
    if (shard.row_begin != next_row || shard.row_end <= shard.row_begin) {
      return Inconsistent(
          source,
          absl::StrCat("shard ", i, " (", shard.file.file, ") covers rows [", shard.row_begin, ", ",
                       shard.row_end, "), expected a non-empty range starting at ", next_row));
    }
    uint64_t expected = 0;
    if (__builtin_mul_overflow(static_cast<uint64_t>(shard.row_end - shard.row_begin),
                               static_cast<uint64_t>(m.dim), &expected) ||
        __builtin_mul_overflow(expected, static_cast<uint64_t>(element), &expected)) {
      return Inconsistent(source, absl::StrCat("shard ", shard.file.file, " is too large"));
    }
    if (shard.file.bytes != expected) {
      return Inconsistent(
          source, absl::StrCat("shard ", shard.file.file, " lists ", shard.file.bytes,
                               " bytes, expected ", expected, " (", shard.row_end - shard.row_begin,
                               " rows x ", m.dim, " x ", m.dtype, ")"));
    }
    next_row = shard.row_end;
  }
  if (next_row != m.rows) {
    return Inconsistent(
        source, absl::StrCat("shards cover rows [0, ", next_row, "), but rows is ", m.rows));
  }
  std::set<std::string> names;
  auto unique = [&](const FileEntry& f) -> absl::Status {
    if (!names.insert(f.file).second) {
      return Inconsistent(source, absl::StrCat("file ", f.file, " is listed twice"));
    }
    return absl::OkStatus();
  };
  for (const ShardEntry& shard : m.shards) RETURN_IF_ERROR(unique(shard.file));
  RETURN_IF_ERROR(unique(m.factors));
  RETURN_IF_ERROR(unique(m.samples));
  RETURN_IF_ERROR(unique(m.model_weights));
  RETURN_IF_ERROR(unique(m.model_config));
  if (!m.tombstones.file.empty()) RETURN_IF_ERROR(unique(m.tombstones));
  if (names.count(kManifestFile) > 0) {
    return Inconsistent(source, "the manifest must not list itself");
  }
  return absl::OkStatus();
}

}  // namespace

int RequiredFormatVersion(const Manifest& manifest) {
  return manifest.tombstones.file.empty() ? 1 : 2;
}

std::string ManifestToJson(const Manifest& m) {
  json shards = json::array();
  for (const ShardEntry& shard : m.shards) {
    json entry = FileEntryToJson(shard.file);
    entry["row_begin"] = shard.row_begin;
    entry["row_end"] = shard.row_end;
    shards.push_back(std::move(entry));
  }
  json root = {
      {"format_version", RequiredFormatVersion(m)},
      {"model_fingerprint", m.model_fingerprint},
      {"dataset", m.dataset},
      {"data_dir", m.data_dir},
      {"dtype", m.dtype},
      {"rows", m.rows},
      {"dim", m.dim},
      {"projection",
       {{"kind", m.projection_kind},
        {"dim_per_side", m.projection_dim_per_side},
        {"seed", m.projection_seed},
        {"layer_dims", m.layer_dims}}},
      {"curvature", {{"fisher", m.fisher}, {"factor_examples", m.factor_examples}}},
      {"shards", std::move(shards)},
      {"files",
       {{"factors", FileEntryToJson(m.factors)},
        {"samples", FileEntryToJson(m.samples)},
        {"model_weights", FileEntryToJson(m.model_weights)},
        {"model_config", FileEntryToJson(m.model_config)}}},
  };
  if (m.generation != 0) root["generation"] = m.generation;
  if (!m.adam_correction.empty()) root["projection"]["adam_correction"] = m.adam_correction;
  if (m.shard_of.has_value()) {
    root["shard_of"] = {{"first_row", m.shard_of->first_row},
                        {"total_rows", m.shard_of->total_rows},
                        {"parent_manifest_xxh3", m.shard_of->parent_manifest_xxh3}};
  }
  if (!m.tombstones.file.empty()) root["files"]["tombstones"] = FileEntryToJson(m.tombstones);
  // `replace` keeps dump() from throwing on strings that are not valid UTF-8 (e.g. a data_dir).
  return root.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

absl::StatusOr<Manifest> ManifestFromJson(const std::string& text, const std::string& source) {
  json root = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) {
    return absl::DataLossError(
        absl::StrCat("index manifest ", source, " is not valid JSON (", text.size(), " bytes)"));
  }
  FieldReader top(root, source, "");
  RETURN_IF_ERROR(top.Check());
  Manifest m;
  // The version comes first: a newer format may have changed every other field.
  int64_t version = 0;
  RETURN_IF_ERROR(top.Int64("format_version", &version, /*min_value=*/1));
  if (version > kIndexFormatVersion) {
    return absl::FailedPreconditionError(absl::StrCat("index ", source, " has format version ",
                                                      version, ", this tda reads up to ",
                                                      kIndexFormatVersion, "; upgrade tda"));
  }
  m.format_version = static_cast<int>(version);
  RETURN_IF_ERROR(top.String("model_fingerprint", &m.model_fingerprint));
  RETURN_IF_ERROR(top.String("dataset", &m.dataset));
  RETURN_IF_ERROR(top.String("data_dir", &m.data_dir));
  RETURN_IF_ERROR(top.String("dtype", &m.dtype));
  RETURN_IF_ERROR(top.Int64("rows", &m.rows));
  RETURN_IF_ERROR(top.Int64("dim", &m.dim));

  ASSIGN_OR_RETURN(const json* projection_json, top.Field("projection"));
  FieldReader projection(*projection_json, source, "projection");
  RETURN_IF_ERROR(projection.Check());
  RETURN_IF_ERROR(projection.String("kind", &m.projection_kind));
  RETURN_IF_ERROR(projection.Int64("dim_per_side", &m.projection_dim_per_side));
  RETURN_IF_ERROR(projection.UInt64("seed", &m.projection_seed));
  ASSIGN_OR_RETURN(const json* layer_dims, projection.Field("layer_dims"));
  if (!layer_dims->is_array()) {
    return projection.Error("projection.layer_dims", "an array", *layer_dims);
  }
  for (size_t i = 0; i < layer_dims->size(); ++i) {
    int64_t d = 0;
    RETURN_IF_ERROR(projection.ToInt64((*layer_dims)[i],
                                       absl::StrCat("projection.layer_dims[", i, "]"), &d, 1));
    m.layer_dims.push_back(d);
  }

  if (projection_json->contains("adam_correction")) {
    RETURN_IF_ERROR(projection.String("adam_correction", &m.adam_correction));
    if (m.adam_correction != "exact" && m.adam_correction != "rank1") {
      return absl::DataLossError(absl::StrCat(source, ": projection.adam_correction '",
                                              m.adam_correction, "' is not exact or rank1"));
    }
  }

  ASSIGN_OR_RETURN(const json* curvature_json, top.Field("curvature"));
  FieldReader curvature(*curvature_json, source, "curvature");
  RETURN_IF_ERROR(curvature.Check());
  RETURN_IF_ERROR(curvature.String("fisher", &m.fisher));
  RETURN_IF_ERROR(curvature.Int64("factor_examples", &m.factor_examples));

  ASSIGN_OR_RETURN(const json* shards, top.Field("shards"));
  if (!shards->is_array()) return top.Error("shards", "an array", *shards);
  for (size_t i = 0; i < shards->size(); ++i) {
    FieldReader shard_reader((*shards)[i], source, absl::StrCat("shards[", i, "]"));
    ShardEntry shard;
    RETURN_IF_ERROR(shard_reader.ReadFileEntry(&shard.file));
    RETURN_IF_ERROR(shard_reader.Int64("row_begin", &shard.row_begin));
    RETURN_IF_ERROR(shard_reader.Int64("row_end", &shard.row_end));
    m.shards.push_back(std::move(shard));
  }

  ASSIGN_OR_RETURN(const json* files_json, top.Field("files"));
  FieldReader files(*files_json, source, "files");
  RETURN_IF_ERROR(files.Check());
  RETURN_IF_ERROR(files.FileEntryField("factors", &m.factors));
  RETURN_IF_ERROR(files.FileEntryField("samples", &m.samples));
  RETURN_IF_ERROR(files.FileEntryField("model_weights", &m.model_weights));
  RETURN_IF_ERROR(files.FileEntryField("model_config", &m.model_config));
  // Version 2: optional deleted rows, and the generation counter of appends and deletes.
  if (version >= 2 && files_json->contains("tombstones")) {
    RETURN_IF_ERROR(files.FileEntryField("tombstones", &m.tombstones));
  }
  if (root.contains("generation")) RETURN_IF_ERROR(top.Int64("generation", &m.generation));
  if (root.contains("shard_of")) {
    FieldReader shard_of(root["shard_of"], source, "shard_of");
    RETURN_IF_ERROR(shard_of.Check());
    ShardOf parent;
    RETURN_IF_ERROR(shard_of.Int64("first_row", &parent.first_row));
    RETURN_IF_ERROR(shard_of.Int64("total_rows", &parent.total_rows, /*min_value=*/1));
    RETURN_IF_ERROR(shard_of.String("parent_manifest_xxh3", &parent.parent_manifest_xxh3));
    if (parent.first_row > parent.total_rows - m.rows) {
      return Inconsistent(
          source,
          absl::StrCat("shard_of: rows [", parent.first_row, ", ", parent.first_row, " + ", m.rows,
                       ") do not fit in the parent's ", parent.total_rows, " rows"));
    }
    m.shard_of = std::move(parent);
  }

  RETURN_IF_ERROR(Validate(m, source));
  return m;
}

}  // namespace tda
