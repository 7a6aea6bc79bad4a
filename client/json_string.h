// JSON string literals for the CLI's hand-written JSON outputs (the API's own messages go
// through protobuf's JSON mapping in result_format.h instead).
#pragma once

#include <string>

namespace tda {

// `s` as a JSON string literal, quotes included; control bytes escaped, other bytes kept.
std::string JsonString(const std::string& s);

}  // namespace tda
