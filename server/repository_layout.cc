#include "server/repository_layout.h"

#include <algorithm>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace tda {

bool ParseVersion(const std::string& text, int64_t* version) {
  if (text.empty() || text[0] == '0') return false;
  for (char c : text) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return absl::SimpleAtoi(text, version) && *version > 0;
}

bool IsServableName(const std::string& name) {
  if (name.empty() || name[0] == '.') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

std::vector<std::filesystem::path> Subdirectories(
    const std::filesystem::path& dir, const std::function<bool(const std::string&)>& accept) {
  std::vector<std::filesystem::path> found;
  std::error_code error;
  for (std::filesystem::directory_iterator it(dir, error), end; !error && it != end;
       it.increment(error)) {
    std::error_code type_error;
    if (it->is_directory(type_error) && accept(it->path().filename().string())) {
      found.push_back(it->path());
    }
  }
  return found;
}

absl::Status ParsePin(const std::string& text, std::map<std::string, int64_t>* pins) {
  const size_t equals = text.find('=');
  int64_t version = 0;
  if (equals == std::string::npos || !IsServableName(text.substr(0, equals)) ||
      !ParseVersion(text.substr(equals + 1), &version)) {
    return absl::InvalidArgumentError(
        absl::StrCat("pin '", text, "' is not NAME=VERSION (VERSION a positive integer)"));
  }
  if (!pins->emplace(text.substr(0, equals), version).second) {
    return absl::InvalidArgumentError(
        absl::StrCat("index '", text.substr(0, equals), "' is pinned twice"));
  }
  return absl::OkStatus();
}

}  // namespace tda
