// The files of a Hugging Face tokenizer (tokenizer.json, tokenizer.model, vocab.json, the
// configs, ...): finding them in a model directory (or as one file), fingerprinting them for
// recipes and cache keys, copying them beside a model, and reading the JSON ones. Errors name
// the file.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace tda {

// The names a model directory's tokenizer files have (tda import --hf copies these).
inline constexpr const char* kTokenizerFileNames[] = {
    "tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json",
    "vocab.json",     "merges.txt",      "generation_config.json"};

// A tokenizer's files: each canonical name (of kTokenizerFileNames) and where it is.
struct TokenizerFiles {
  std::string origin;                        // the directory or file they were found from
  std::map<std::string, std::string> paths;  // canonical name -> path
  bool empty() const { return paths.empty(); }
};

// A directory: those of kTokenizerFileNames present in it (none: empty()). A file: a
// SentencePiece model (any name but *.json, e.g. spm_train's m.model) as tokenizer.model, or a
// Hugging Face tokenizer.json. kNotFound when `dir_or_file` does not exist.
[[nodiscard]] absl::StatusOr<TokenizerFiles> FindTokenizerFiles(const std::string& dir_or_file);

// XXH3 of every file's canonical name and content XXH3, in name order, as 16 hex digits; ""
// for no files. Equal fingerprints: the same tokenizer.
[[nodiscard]] absl::StatusOr<std::string> TokenizerFingerprint(const TokenizerFiles& files);

// Copies the files into `dir` (which must exist) under their canonical names, each atomically.
// A file already there with the same content is left alone.
[[nodiscard]] absl::Status CopyTokenizerFiles(const TokenizerFiles& files, const std::string& dir);

// The parsed file; kNotFound when it is missing, kInvalidArgument naming the file and the byte
// where parsing failed when it is not JSON. `bytes` (optional) receives the file's bytes.
[[nodiscard]] absl::StatusOr<nlohmann::json> ReadJsonFile(const std::string& path,
                                                          std::string* bytes = nullptr);

// A token as Hugging Face configs write it: "<s>" or {"content": "<s>", ...}; nullopt for null
// or anything else.
std::optional<std::string> TokenContent(const nlohmann::json& value);

}  // namespace tda
