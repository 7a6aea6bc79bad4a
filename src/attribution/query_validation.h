// The checks of an attribution request that need no index: how many queries, top_k, each
// query's input (exactly one of sample id, raw features, text), finite features, labels,
// finite non-negative damping. Attributor::Attribute runs them first; tda-server runs them
// before a call may wait for a query slot, so malformed requests never queue; the request
// fuzzer (tests/fuzz/request_fuzz.cc) runs them on every parsed request. Checks that need the
// index (known ids, feature count, label < classes, text vs image model) stay in Attributor.
//
// Pure functions; thread-safe.
#pragma once

#include <vector>

#include "absl/status/status.h"
#include "attribution/attributor.h"

namespace tda {

// kInvalidArgument naming the first offending query or option and what is allowed.
[[nodiscard]] absl::Status ValidateAttributeRequest(const std::vector<Query>& queries,
                                                    const AttributeOptions& options);

}  // namespace tda
