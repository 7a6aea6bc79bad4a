#include "data/tokenizer_files.h"

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "common/status_macros.h"

namespace tda {

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
