#include "data/jsonl_corpus.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <unordered_map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "common/checksum.h"
#include "common/status_macros.h"
#include "data/line_reader.h"
#include "data/utf8_escape.h"

namespace tda {
namespace {

using json = nlohmann::json;

constexpr size_t kSkippedReasonsKept = 20;

// "web" for ".../web.jsonl.zst".
std::string FileStem(const std::string& path) {
  std::string name = std::filesystem::path(path).filename().string();
  const size_t dot = name.find('.');
  return dot == std::string::npos || dot == 0 ? name : name.substr(0, dot);
}

// A string field of `line`, unescaped; "" with *present = false when absent.
absl::StatusOr<std::string> StringField(const json& line, const std::string& field, bool* present) {
  auto it = line.find(field);
  *present = it != line.end() && !it->is_null();
  if (!*present) return std::string();
  if (!it->is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat("field '", field, "' is ", it->type_name(), ", not a string"));
  }
  std::string value = it->get<std::string>();
  UnescapeInvalidUtf8(&value);
  return value;
}

bool IsBlank(const std::string& text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; });
}

// The document of one parsed line (errors without the file:line prefix).
absl::StatusOr<TextDocument> DocumentOf(const json& line, const JsonlOptions& options,
                                        const std::string& file_stem, int64_t line_number) {
  if (!line.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat("not a JSON object (", line.type_name(), ")"));
  }
  TextDocument doc;
  bool present = false;
  const bool pairs = !options.prompt_field.empty();
  if (pairs) {
    ASSIGN_OR_RETURN(std::string prompt, StringField(line, options.prompt_field, &present));
    if (!present) {
      return absl::InvalidArgumentError(absl::StrCat("no field '", options.prompt_field, "'"));
    }
    ASSIGN_OR_RETURN(std::string completion, StringField(line, options.completion_field, &present));
    if (!present) {
      return absl::InvalidArgumentError(absl::StrCat("no field '", options.completion_field, "'"));
    }
    if (completion.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("empty completion (field '", options.completion_field, "')"));
    }
    doc.prompt_bytes = static_cast<int64_t>(prompt.size());
    doc.text = std::move(prompt) + completion;
  } else {
    ASSIGN_OR_RETURN(doc.text, StringField(line, options.text_field, &present));
    if (!present) {
      return absl::InvalidArgumentError(absl::StrCat(
          "no field '", options.text_field,
          "' (name the text field, or the prompt and completion fields of instruction data)"));
    }
    if (IsBlank(doc.text)) {
      return absl::InvalidArgumentError(
          absl::StrCat("empty document (field '", options.text_field, "')"));
    }
  }
  auto id = line.find(options.id_field);
  if (id == line.end() || id->is_null()) {
    doc.id = absl::StrCat(file_stem, ":", line_number);
  } else if (id->is_string()) {
    doc.id = id->get<std::string>();
    UnescapeInvalidUtf8(&doc.id);
    if (doc.id.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("field '", options.id_field, "' is empty"));
    }
  } else if (id->is_number_integer()) {
    doc.id = id->dump();
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "field '", options.id_field, "' is ", id->type_name(), ", not a string or an integer"));
  }
  if (!options.source_from_file) {
    ASSIGN_OR_RETURN(doc.source, StringField(line, options.source_field, &present));
  }
  if (doc.source.empty()) doc.source = file_stem;
  return doc;
}

absl::Status ValidateOptions(const JsonlOptions& options) {
  if (options.paths.empty()) return absl::InvalidArgumentError("no JSONL files given");
  if (options.prompt_field.empty() != options.completion_field.empty()) {
    return absl::InvalidArgumentError(
        "instruction data needs both a prompt field and a completion field");
  }
  if (options.prompt_field.empty() && options.text_field.empty()) {
    return absl::InvalidArgumentError("the text field name is empty");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ReadJsonlDocuments(const JsonlOptions& options,
                                const std::function<absl::Status(TextDocument&&)>& visit,
                                JsonlStats* stats) {
  RETURN_IF_ERROR(ValidateOptions(options));
  JsonlStats local;
  if (stats == nullptr) stats = &local;
  *stats = JsonlStats{};
  // Where each id was first seen: file index and line, to name both places of a duplicate.
  std::unordered_map<std::string, std::pair<size_t, int64_t>> seen;
  std::string raw, escaped;
  for (size_t f = 0; f < options.paths.size(); ++f) {
    const std::string& path = options.paths[f];
    const std::string stem = FileStem(path);
    ASSIGN_OR_RETURN(std::unique_ptr<LineReader> reader, LineReader::Open(path));
    while (true) {
      ASSIGN_OR_RETURN(bool more, reader->Next(&raw));
      if (!more) break;
      if (IsBlank(raw)) continue;
      const int64_t line_number = reader->line_number();
      const std::string where = absl::StrCat(path, ":", line_number);
      const int64_t invalid = EscapeInvalidUtf8(raw, &escaped);
      absl::StatusOr<TextDocument> doc = absl::InvalidArgumentError("");
      json parsed = json::parse(escaped, nullptr, /*allow_exceptions=*/false);
      if (parsed.is_discarded()) {
        doc = absl::InvalidArgumentError("not valid JSON");
      } else {
        doc = DocumentOf(parsed, options, stem, line_number);
      }
      if (!doc.ok()) {
        const std::string reason = absl::StrCat(where, ": ", doc.status().message());
        if (!options.skip_bad_lines) {
          return absl::InvalidArgumentError(
              absl::StrCat(reason, " (fix the line, or skip such lines with --skip-bad-lines)"));
        }
        ++stats->skipped_lines;
        if (stats->skipped.size() < kSkippedReasonsKept) stats->skipped.push_back(reason);
        continue;
      }
      auto [it, inserted] = seen.try_emplace(doc->id, f, line_number);
      if (!inserted) {
        return absl::InvalidArgumentError(absl::StrCat(
            "duplicate id '", doc->id, "': ", options.paths[it->second.first], ":",
            it->second.second, " and ", where, " (ids must be unique within the corpus)"));
      }
      if (invalid > 0) {
        stats->invalid_utf8_bytes += invalid;
        ++stats->documents_with_invalid_utf8;
      }
      ++stats->documents;
      if (absl::Status visited = visit(*std::move(doc)); !visited.ok()) {
        return absl::Status(visited.code(), absl::StrCat(where, ": ", visited.message()));
      }
    }
  }
  return absl::OkStatus();
}

std::string JsonlCorpusName(const JsonlOptions& options) {
  return options.paths.empty() ? std::string() : FileStem(options.paths.front());
}

absl::StatusOr<Dataset> LoadJsonl(const JsonlOptions& options, Split split,
                                  const TextSplitOptions& split_options, int64_t* truncated,
                                  JsonlStats* stats) {
  RETURN_IF_ERROR(ValidateTextSplitOptions(split_options));
  RETURN_IF_ERROR(ValidateOptions(options));
  std::vector<TextDocument> docs;
  RETURN_IF_ERROR(ReadJsonlDocuments(
      options,
      [&docs, &split_options](TextDocument&& doc) {
        RETURN_IF_ERROR(CheckChunkableId(doc.id, split_options.chunk_stride));
        docs.push_back(std::move(doc));
        return absl::OkStatus();
      },
      stats));
  return SplitDocuments(std::move(docs), JsonlCorpusName(options), split, split_options,
                        truncated);
}

absl::StatusOr<std::string> JsonlCorpusHash(const std::vector<std::string>& paths) {
  Xxh3Stream hash;
  for (const std::string& path : paths) {
    ASSIGN_OR_RETURN(uint64_t file_hash, FileXxh3(path));
    hash.Update(&file_hash, sizeof(file_hash));
  }
  return ChecksumHex(hash.Digest());
}

absl::Status WriteJsonl(const std::vector<TextDocument>& docs, const std::string& path) {
  AtomicFileWriter out;
  RETURN_IF_ERROR(out.Open(path));
  std::string escaped;
  auto text = [&escaped](std::string_view value) {
    EscapeInvalidUtf8(value, &escaped);
    return escaped;
  };
  for (const TextDocument& doc : docs) {
    json line = json::object();
    line["id"] = text(doc.id);
    line["source"] = text(doc.source);
    if (doc.prompt_bytes > 0) {
      const size_t cut = std::min<size_t>(static_cast<size_t>(doc.prompt_bytes), doc.text.size());
      line["prompt"] = text(std::string_view(doc.text).substr(0, cut));
      line["completion"] = text(std::string_view(doc.text).substr(cut));
    } else {
      line["text"] = text(doc.text);
    }
    const std::string serialized = line.dump() + "\n";
    RETURN_IF_ERROR(out.Append(serialized.data(), serialized.size()));
  }
  return out.Commit();
}

}  // namespace tda
