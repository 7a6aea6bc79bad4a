#include "data/tensor_corpus.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/npy.h"
#include "common/status_macros.h"
#include "data/line_reader.h"
#include "data/text_document.h"
#include "nlohmann/json.hpp"

namespace tda {
namespace {

std::string Stem(const std::string& path) {
  std::string name = std::filesystem::path(path).filename().string();
  if (absl::EndsWith(name, ".npy")) name.resize(name.size() - 4);
  return name;
}

template <typename T>
T LoadLe(const unsigned char* at) {
  T value;
  std::memcpy(&value, at, sizeof(T));  // the host is little-endian (x86-64, aarch64)
  return value;
}

absl::StatusOr<NpyFile> OpenFeatures(const std::string& path) {
  ASSIGN_OR_RETURN(NpyFile file, NpyFile::Open(path));
  const std::string& t = file.dtype();
  if (t != "f4" && t != "f8" && t != "u1") {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": features have dtype ", t, ", shape ", file.ShapeText(),
        "; expected float32 (f4), float64 (f8) or uint8 (u1) of shape (N, D)"));
  }
  if (file.shape().size() != 2) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": features have shape ",
                                                   file.ShapeText(), " (dtype ", t,
                                                   "); expected a matrix of shape (N, D)"));
  }
  if (file.fortran_order() && file.shape()[0] > 1 && file.shape()[1] > 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": features (", t, ", shape ", file.ShapeText(),
        ") are in Fortran (column-major) order; expected C order (numpy.ascontiguousarray)"));
  }
  return file;
}

absl::StatusOr<NpyFile> OpenLabels(const std::string& path) {
  ASSIGN_OR_RETURN(NpyFile file, NpyFile::Open(path));
  const std::string& t = file.dtype();
  if ((t != "i8" && t != "i4" && t != "u1") || file.shape().size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": labels have dtype ", t, ", shape ", file.ShapeText(),
        "; expected int64 (i8), int32 (i4) or uint8 (u1) of shape (N,)"));
  }
  return file;
}

// All labels; refuses negative ones and ones that do not fit an int32.
absl::StatusOr<std::vector<int32_t>> ReadLabels(const NpyFile& file) {
  std::vector<int32_t> labels(static_cast<size_t>(file.numel()));
  for (int64_t i = 0; i < file.numel(); ++i) {
    const unsigned char* at = file.data() + i * file.item_size();
    const int64_t v = file.dtype() == "i8"   ? LoadLe<int64_t>(at)
                      : file.dtype() == "i4" ? LoadLe<int32_t>(at)
                                             : int64_t{*at};
    if (v < 0 || v > std::numeric_limits<int32_t>::max()) {
      return absl::InvalidArgumentError(
          absl::StrCat(file.path(), ": row ", i, ": label ", v, " is negative or too large"));
    }
    labels[i] = static_cast<int32_t>(v);
  }
  return labels;
}

absl::StatusOr<std::vector<std::string>> ReadClassNames(const std::string& path) {
  std::vector<std::string> names;
  if (absl::EndsWith(path, ".json")) {
    std::string text;
    {
      ASSIGN_OR_RETURN(std::unique_ptr<LineReader> reader, LineReader::Open(path));
      std::string line;
      while (true) {
        ASSIGN_OR_RETURN(bool more, reader->Next(&line));
        if (!more) break;
        absl::StrAppend(&text, line, "\n");
      }
    }
    nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!json.is_object() || !json.contains("class_names") || !json["class_names"].is_array()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": expected a JSON object with a \"class_names\" list of strings"));
    }
    for (const nlohmann::json& name : json["class_names"]) {
      if (!name.is_string()) {
        return absl::InvalidArgumentError(absl::StrCat(path, ": class_names holds a non-string"));
      }
      names.push_back(name.get<std::string>());
    }
  } else {
    ASSIGN_OR_RETURN(std::unique_ptr<LineReader> reader, LineReader::Open(path));
    std::string line;
    while (true) {
      ASSIGN_OR_RETURN(bool more, reader->Next(&line));
      if (!more) break;
      names.push_back(line);
    }
  }
  if (names.empty()) return absl::InvalidArgumentError(absl::StrCat(path, ": no class names"));
  return names;
}

// Ids and sources from a sidecar of exactly `rows` records (TSV with a header, or JSONL).
absl::Status ReadSamples(const std::string& path, int64_t rows, std::vector<std::string>* ids,
                         std::vector<std::string>* sources, const std::string& default_source) {
  ASSIGN_OR_RETURN(std::unique_ptr<LineReader> reader, LineReader::Open(path));
  const bool jsonl = absl::StrContains(std::filesystem::path(path).filename().string(), ".jsonl");
  int id_column = -1, source_column = -1;
  std::string line;
  while (true) {
    ASSIGN_OR_RETURN(bool more, reader->Next(&line));
    if (!more) break;
    const std::string where = absl::StrCat(path, ":", reader->line_number());
    std::string id, source = default_source;
    if (jsonl) {
      if (absl::StripAsciiWhitespace(line).empty()) continue;
      nlohmann::json json = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (!json.is_object()) return absl::InvalidArgumentError(where + ": not a JSON object");
      if (json.contains("id") && json["id"].is_string()) id = json["id"].get<std::string>();
      if (json.contains("id") && json["id"].is_number_integer()) id = json["id"].dump();
      if (json.contains("source") && json["source"].is_string()) {
        source = json["source"].get<std::string>();
      }
    } else {
      std::vector<std::string> cells = absl::StrSplit(line, '\t');
      if (id_column < 0) {  // the header
        for (size_t c = 0; c < cells.size(); ++c) {
          if (cells[c] == "id") id_column = static_cast<int>(c);
          if (cells[c] == "source") source_column = static_cast<int>(c);
        }
        if (id_column < 0) {
          return absl::InvalidArgumentError(
              absl::StrCat(where, ": the header line names no 'id' column (got '", line, "')"));
        }
        continue;
      }
      if (id_column < static_cast<int>(cells.size())) id = cells[id_column];
      if (source_column >= 0 && source_column < static_cast<int>(cells.size())) {
        source = cells[source_column];
      }
    }
    if (id.empty()) return absl::InvalidArgumentError(where + ": the record has no id");
    ids->push_back(std::move(id));
    sources->push_back(std::move(source));
  }
  if (static_cast<int64_t>(ids->size()) != rows) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", ids->size(),
                                                   " sample records, the arrays have ", rows,
                                                   " rows"));
  }
  return absl::OkStatus();
}

absl::Status CheckUniqueIds(const std::vector<std::string>& ids, const std::string& file) {
  std::map<absl::string_view, size_t> seen;
  for (size_t i = 0; i < ids.size(); ++i) {
    auto [it, inserted] = seen.emplace(ids[i], i);
    if (!inserted) {
      return absl::InvalidArgumentError(absl::StrCat(file, ": duplicate id '", ids[i],
                                                     "' at rows ", it->second, " and ", i));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TensorCorpusFiles> ParseTensorCorpusSpec(const std::string& spec) {
  TensorCorpusFiles files;
  const std::map<std::string, std::string*> keys = {
      {"samples", &files.samples},
      {"class-names", &files.class_names},
      {"test-features", &files.test_features},
      {"test-labels", &files.test_labels},
      {"test-samples", &files.test_samples}};
  int positional = 0;
  for (absl::string_view part : absl::StrSplit(spec, ',', absl::SkipEmpty())) {
    const size_t eq = part.find('=');
    const std::string key(eq == absl::string_view::npos ? "" : part.substr(0, eq));
    auto it = keys.find(key);
    if (it == keys.end()) {
      if (positional == 2) {
        return absl::InvalidArgumentError(absl::StrCat(
            "tensors corpus '", spec, "': unexpected entry '", part,
            "' (expected features.npy,labels.npy then samples=, class-names=, test-features=, "
            "test-labels=, test-samples=)"));
      }
      *(positional++ == 0 ? &files.features : &files.labels) = std::string(part);
      continue;
    }
    if (!it->second->empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensors corpus '", spec, "': ", key, "= given twice"));
    }
    *it->second = std::string(part.substr(eq + 1));
  }
  if (files.features.empty() || files.labels.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tensors corpus '", spec, "': needs a features and a labels .npy file"));
  }
  if (files.test_features.empty() != files.test_labels.empty() ||
      (files.test_features.empty() && !files.test_samples.empty())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tensors corpus '", spec, "': test-features and test-labels go together (test-samples "
        "needs them)"));
  }
  return files;
}

absl::StatusOr<std::string> TensorCorpusSpec(const TensorCorpusFiles& files) {
  std::vector<std::string> parts = {files.features, files.labels};
  for (const auto& [key, path] : std::vector<std::pair<const char*, const std::string*>>{
           {"samples", &files.samples},
           {"class-names", &files.class_names},
           {"test-features", &files.test_features},
           {"test-labels", &files.test_labels},
           {"test-samples", &files.test_samples}}) {
    if (!path->empty()) parts.push_back(absl::StrCat(key, "=", *path));
  }
  for (const std::string& part : parts) {
    if (absl::StrContains(part.substr(part.find('=') + 1), ',')) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensors corpus: the path '", part, "' contains ','; rename it"));
    }
  }
  const std::string spec = absl::StrJoin(parts, ",");
  RETURN_IF_ERROR(ParseTensorCorpusSpec(spec).status());
  return spec;
}

absl::StatusOr<Dataset> LoadTensorCorpus(const TensorCorpusFiles& files, Split split,
                                         int64_t limit, double held_out_fraction) {
  const bool test_files = !files.test_features.empty();
  const bool use_test = split == Split::kTest && test_files;
  const std::string& features_path = use_test ? files.test_features : files.features;
  const std::string& labels_path = use_test ? files.test_labels : files.labels;
  const std::string& samples_path = use_test ? files.test_samples : files.samples;

  ASSIGN_OR_RETURN(NpyFile features, OpenFeatures(features_path));
  ASSIGN_OR_RETURN(NpyFile label_file, OpenLabels(labels_path));
  const int64_t n = features.shape()[0];
  const int64_t dim = features.shape()[1];
  if (label_file.shape()[0] != n) {
    return absl::InvalidArgumentError(absl::StrCat(
        labels_path, ": ", label_file.shape()[0], " labels, but ", features_path, " has ", n,
        " rows"));
  }
  ASSIGN_OR_RETURN(std::vector<int32_t> labels, ReadLabels(label_file));

  Dataset out;
  out.name = absl::StrCat(Stem(files.features), split == Split::kTrain ? "/train" : "/held-out");
  out.feature_dim = dim;
  if (!files.class_names.empty()) {
    ASSIGN_OR_RETURN(out.class_names, ReadClassNames(files.class_names));
  } else {
    // K from the training labels, so that both splits name the same classes.
    std::vector<int32_t> train_labels;
    if (use_test) {
      ASSIGN_OR_RETURN(NpyFile main, OpenLabels(files.labels));
      ASSIGN_OR_RETURN(train_labels, ReadLabels(main));
    }
    int32_t max_label = -1;
    for (int32_t l : use_test ? train_labels : labels) max_label = std::max(max_label, l);
    for (int32_t k = 0; k <= max_label; ++k) out.class_names.push_back(std::to_string(k));
  }
  const int64_t classes = static_cast<int64_t>(out.class_names.size());
  for (int64_t i = 0; i < n; ++i) {
    if (labels[i] >= classes) {
      return absl::InvalidArgumentError(absl::StrCat(
          labels_path, ": row ", i, ": label ", labels[i], " is >= the number of classes (",
          classes, files.class_names.empty() ? " = max training label + 1"
                                             : absl::StrCat(" class names in ", files.class_names),
          ")"));
    }
  }

  std::vector<std::string> ids, sources;
  const std::string stem = Stem(features_path);
  if (!samples_path.empty()) {
    RETURN_IF_ERROR(ReadSamples(samples_path, n, &ids, &sources, stem));
  } else {
    ids.reserve(n);
    for (int64_t i = 0; i < n; ++i) ids.push_back(absl::StrCat(stem, "/", i));
    sources.assign(n, stem);
  }
  RETURN_IF_ERROR(CheckUniqueIds(ids, samples_path.empty() ? features_path : samples_path));

  std::vector<int64_t> rows;
  for (int64_t i = 0; i < n; ++i) {
    const bool held_out = !test_files && IsHeldOut(ids[i], 0, held_out_fraction);
    if (split == Split::kTest && !test_files && !held_out) continue;
    if (split == Split::kTrain && held_out) continue;
    if (split == Split::kTrain && limit > 0 && static_cast<int64_t>(rows.size()) >= limit) break;
    rows.push_back(i);
  }

  // Every row of the file is checked; the selected ones are converted into `out` as read.
  out.features.resize(rows.size() * static_cast<size_t>(dim));
  const std::string& dtype = features.dtype();
  const int64_t item = features.item_size();
  size_t next = 0;
  for (int64_t i = 0; i < n; ++i) {
    const bool selected = next < rows.size() && rows[next] == i;
    float* dst = selected ? out.features.data() + next * dim : nullptr;
    const unsigned char* src = features.data() + i * dim * item;
    for (int64_t c = 0; c < dim; ++c) {
      const unsigned char* at = src + c * item;
      const float v = dtype == "f4"   ? LoadLe<float>(at)
                      : dtype == "f8" ? static_cast<float>(LoadLe<double>(at))
                                      : static_cast<float>(*at);
      if (!std::isfinite(v)) {
        const double original = dtype == "f8" ? LoadLe<double>(at) : v;
        return absl::InvalidArgumentError(absl::StrCat(
            features_path, ": row ", i, ", column ", c, " is ",
            std::isnan(original) ? "NaN" : std::isinf(original) ? "infinite"
                                                                 : "too large for float32",
            "; features must be finite"));
      }
      if (dst != nullptr) dst[c] = v;
    }
    if (selected) {
      out.labels.push_back(labels[i]);
      out.ids.push_back(std::move(ids[i]));
      out.sources.push_back(std::move(sources[i]));
      ++next;
    }
  }
  return out;
}

}  // namespace tda
