// Text renderings of attribution results and index descriptions for the tda CLI: readable
// tables for people and JSON for programs. The JSON is the tda.v1 API's own JSON mapping
// (AttributeResponse / DescribeIndexResponse, snake_case field names), so scripts see the
// same schema whether the answer came from a server or an offline index.
// Thread-safe (pure functions).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "attribution/attributor.h"
#include "tda/v1/attribution.pb.h"

namespace tda {

// The class name of `label`, "class <label>" beyond the list, "-" for a negative label.
std::string ClassName(const std::vector<std::string>& class_names, int32_t label);

// Per query: id, true / predicted / measured label names, probability and loss, then
// "rank | train id | label | score" tables of proponents and opponents, then (when asked for)
// the documents ranked by their chunks' summed scores and the per-source totals.
// Text queries: documents with the verbatim overlap, and per-token influence shaded with ANSI
// colours when `ansi` (a terminal), else listed as the most influential characters.
std::string FormatResultsTable(const std::vector<QueryResult>& results,
                               const std::vector<std::string>& class_names, bool ansi = false);

// AttributeResponse as JSON (score vectors left out: they belong in --scores-out).
std::string FormatResultsJson(const std::vector<QueryResult>& results, Method method,
                              int64_t index_rows);

// Any API message in the same JSON mapping (snake_case field names, defaults printed).
std::string MessageToJson(const google::protobuf::Message& message);

std::string FormatDescriptionText(const v1::DescribeIndexResponse& description);
std::string FormatDescriptionJson(const v1::DescribeIndexResponse& description);

}  // namespace tda
