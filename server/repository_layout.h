// The layout of an index repository (DIR/<name>/<version>/, TF Serving's): which directory
// names are servable index names and versions, and version pins. Stateless.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace tda {

// A version directory's name: a positive decimal integer without leading zeros.
bool ParseVersion(const std::string& text, int64_t* version);

// Names are used in URLs (/v1/indexes/{name}); others, and hidden staging directories (".x"),
// are not served.
bool IsServableName(const std::string& name);

// The subdirectories of `dir` whose names pass `accept` (none when it cannot be listed).
std::vector<std::filesystem::path> Subdirectories(
    const std::filesystem::path& dir, const std::function<bool(const std::string&)>& accept);

// "NAME=VERSION" (VERSION a positive integer) into `pins`; kInvalidArgument otherwise or when
// NAME is pinned twice.
[[nodiscard]] absl::Status ParsePin(const std::string& text, std::map<std::string, int64_t>* pins);

}  // namespace tda
