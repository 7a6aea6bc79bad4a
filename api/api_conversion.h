// Translation between the tda.v1 API messages and the engine's types (attribution/attributor.h).
// Both directions live here so the server (proto -> engine -> proto) and the client library
// (engine -> proto -> engine) cannot drift apart. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "attribution/attributor.h"
#include "tda/v1/attribution.pb.h"

namespace tda {

inline constexpr int64_t kDefaultTopK = 10;

// Method <-> tda.v1.Method. METHOD_UNSPECIFIED means EK-FAC; unknown enum values are
// kInvalidArgument.
v1::Method MethodToProto(Method method);
[[nodiscard]] absl::StatusOr<Method> MethodFromProto(v1::Method method);

// tda.v1.Damping -> the engine's; nullopt when neither kind is set (the index's default).
std::optional<Damping> DampingFromProto(const v1::Damping& damping);

// LiSSA's parameters and curvature (AttributeRequest.lissa, .curvature): unset fields are
// LissaOptions' defaults (their ranges are ValidateAttributeRequest's); kInvalidArgument for
// an unknown curvature.
v1::LissaParameters LissaToProto(const LissaOptions& lissa);
[[nodiscard]] absl::StatusOr<LissaOptions> LissaFromProto(const v1::LissaParameters& lissa,
                                                          v1::Curvature curvature);

// Request: the client builds it with AttributeRequestToProto; the server reads it with
// AttributeRequestFromProto, which rejects what the engine cannot express (a query with no
// input, a negative label, an unknown method) with kInvalidArgument. Everything else (ids,
// feature counts, NaN, top_k range) is validated by Attributor::Attribute.
v1::AttributeRequest AttributeRequestToProto(const std::vector<Query>& queries,
                                             const AttributeOptions& options);
[[nodiscard]] absl::Status AttributeRequestFromProto(const v1::AttributeRequest& request,
                                       std::vector<Query>* queries, AttributeOptions* options);

// Response.
void QueryResultToProto(const QueryResult& result, v1::QueryResult* out);
QueryResult QueryResultFromProto(const v1::QueryResult& result);
v1::AttributeResponse AttributeResponseToProto(const std::vector<QueryResult>& results,
                                               Method method, int64_t index_rows);
std::vector<QueryResult> AttributeResponseFromProto(const v1::AttributeResponse& response);

// Samples. `row` is the sample's index row, or -1 when it is not a training row of the index.
v1::GetSampleResponse SampleToProto(const SampleData& sample, int64_t row);
SampleData SampleFromProto(const v1::GetSampleResponse& sample);

}  // namespace tda
