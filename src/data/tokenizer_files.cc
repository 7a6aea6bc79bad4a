#include "data/tokenizer_files.h"

#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "common/checksum.h"
#include "common/status_macros.h"

namespace tda {

absl::StatusOr<TokenizerFiles> FindTokenizerFiles(const std::string& dir_or_file) {
  namespace fs = std::filesystem;
  TokenizerFiles files;
  files.origin = dir_or_file;
  std::error_code error;
  if (fs::is_directory(dir_or_file, error)) {
    for (const char* name : kTokenizerFileNames) {
      const std::string path = absl::StrCat(dir_or_file, "/", name);
      // Anything by that name (reading it then names it when it is not a readable file).
      if (fs::exists(path, error)) files.paths[name] = path;
    }
    return files;
  }
  if (!fs::is_regular_file(dir_or_file, error)) {
    return absl::NotFoundError(absl::StrCat("tokenizer ", dir_or_file,
                                            " does not exist (give a tokenizer directory, a "
                                            "SentencePiece .model file or a tokenizer.json)"));
  }
  files.paths[absl::EndsWith(dir_or_file, ".json") ? "tokenizer.json" : "tokenizer.model"] =
      dir_or_file;
  return files;
}

absl::StatusOr<std::string> TokenizerFingerprint(const TokenizerFiles& files) {
  if (files.empty()) return std::string();
  std::string listing;
  for (const auto& [name, path] : files.paths) {
    ASSIGN_OR_RETURN(const uint64_t hash, FileXxh3(path));
    absl::StrAppend(&listing, name, " ", ChecksumHex(hash), "\n");
  }
  return ChecksumHex(Xxh3(listing));
}

absl::Status CopyTokenizerFiles(const TokenizerFiles& files, const std::string& dir) {
  for (const auto& [name, path] : files.paths) {
    const std::string target = absl::StrCat(dir, "/", name);
    std::string bytes;
    RETURN_IF_ERROR(ReadFile(path, &bytes));
    if (std::filesystem::exists(target)) {
      std::string existing;
      if (ReadFile(target, &existing).ok() && existing == bytes) continue;
    }
    RETURN_IF_ERROR(WriteFileAtomically(target, bytes));
  }
  return absl::OkStatus();
}

absl::StatusOr<nlohmann::json> ReadJsonFile(const std::string& path, std::string* bytes) {
  std::string text;
  RETURN_IF_ERROR(ReadFile(path, &text));
  try {
    nlohmann::json parsed = nlohmann::json::parse(text);
    if (bytes != nullptr) *bytes = std::move(text);
    return parsed;
  } catch (const nlohmann::json::parse_error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not valid JSON (at byte ", e.byte, "): ", e.what()));
  }
}

std::optional<std::string> TokenContent(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_object() && value.contains("content") && value.at("content").is_string()) {
    return value.at("content").get<std::string>();
  }
  return std::nullopt;
}

}  // namespace tda
