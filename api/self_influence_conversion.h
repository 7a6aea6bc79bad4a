// tda.v1 SelfInfluence request and response <-> the engine's self-influence values
// (Attributor::SelfInfluence / DocumentSelfInfluence, attribution/self_influence.h). Pure
// functions; thread-safe.
#pragma once

#include <Eigen/Core>
#include <cstdint>

#include "absl/status/statusor.h"
#include "attribution/attributor.h"
#include "tda/v1/attribution.pb.h"

namespace tda {

struct SelfInfluenceQuery {
  AttributeOptions options;  // method and damping (top_k unused)
  int64_t top_k = 10;
  bool by_document = false;
};

// kInvalidArgument for top_k outside [1, kMaxTopK], an unknown method, or damping that is not a
// finite number >= 0.
[[nodiscard]] absl::StatusOr<SelfInfluenceQuery> SelfInfluenceRequestFromProto(
    const v1::SelfInfluenceRequest& request);

// The query.top_k highest of `values` (one per row of the attributor's index, or per document of
// its documents() when query.by_document), highest first, with their ids, sources and previews.
v1::SelfInfluenceResponse SelfInfluenceResponseToProto(const Attributor& attributor,
                                                       const SelfInfluenceQuery& query,
                                                       const Eigen::VectorXd& values);

}  // namespace tda
