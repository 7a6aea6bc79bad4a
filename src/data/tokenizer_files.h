// Reading the JSON files of a Hugging Face tokenizer directory (tokenizer.json, vocab.json,
// tokenizer_config.json, ...), shared by the tokenizer loaders. Errors name the file.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace tda {

// The parsed file; kNotFound when it is missing, kInvalidArgument naming the file and the byte
// where parsing failed when it is not JSON. `bytes` (optional) receives the file's bytes.
[[nodiscard]] absl::StatusOr<nlohmann::json> ReadJsonFile(const std::string& path,
                                                          std::string* bytes = nullptr);

// A token as Hugging Face configs write it: "<s>" or {"content": "<s>", ...}; nullopt for null
// or anything else.
std::optional<std::string> TokenContent(const nlohmann::json& value);

}  // namespace tda
