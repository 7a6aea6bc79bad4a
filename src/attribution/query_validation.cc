#include "attribution/query_validation.h"

#include <cmath>
#include <cstdint>

#include "absl/strings/str_cat.h"

namespace tda {

namespace {

absl::Status ValidateQuery(const Query& query, int64_t q) {
  const int inputs = (query.sample_id.empty() ? 0 : 1) + (query.text.has_value() ? 1 : 0) +
                     (query.features.empty() ? 0 : 1);
  if (inputs == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "query ", q, ": no input; give a sample id, raw features, or text (prompt + completion)"));
  }
  if (inputs > 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "query ", q, ": give exactly one of sample id, raw features or text, not several"));
  }
  if (query.label < -1) {
    return absl::InvalidArgumentError(
        absl::StrCat("query ", q, ": label must be >= 0, got ", query.label));
  }
  for (size_t i = 0; i < query.features.size(); ++i) {
    if (!std::isfinite(query.features[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("query ", q, ": feature ", i, " is not finite (", query.features[i], ")"));
    }
  }
  if (query.text.has_value() && query.text->completion.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "query ", q, ": the completion is empty; it is the text whose loss is attributed"));
  }
  return absl::OkStatus();
}

absl::Status ValidateDamping(const Damping& damping) {
  if (damping.absolute.has_value()) {
    if (!std::isfinite(*damping.absolute) || *damping.absolute < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("absolute damping must be a finite number >= 0, got ", *damping.absolute));
    }
    return absl::OkStatus();
  }
  if (!std::isfinite(damping.relative) || damping.relative < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("relative damping must be a finite number >= 0, got ", damping.relative));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateAttributeRequest(const std::vector<Query>& queries,
                                      const AttributeOptions& options) {
  if (queries.empty()) return absl::InvalidArgumentError("no queries given");
  if (static_cast<int64_t>(queries.size()) > kMaxQueriesPerRequest) {
    return absl::InvalidArgumentError(absl::StrCat(queries.size(),
                                                   " queries in one request; the limit is ",
                                                   kMaxQueriesPerRequest, " (split the batch)"));
  }
  if (options.top_k < 1 || options.top_k > kMaxTopK) {
    return absl::InvalidArgumentError(
        absl::StrCat("top_k must be in [1, ", kMaxTopK, "], got ", options.top_k));
  }
  if (options.damping.has_value()) {
    if (absl::Status s = ValidateDamping(*options.damping); !s.ok()) return s;
  }
  if (options.method == Method::kLissa) {
    if (absl::Status s = ValidateLissaOptions(options.lissa); !s.ok()) return s;
  }
  if (absl::Status s = ValidateApproximateSearch(options.approximate, options.top_k,
                                                 options.return_scores, options.group_by_document);
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          ValidateLowRankQueries(options.low_rank, options.top_k, options.return_scores,
                                 options.group_by_document, options.approximate.enabled);
      !s.ok()) {
    return s;
  }
  if (options.unit_norm && (options.approximate.enabled || options.low_rank.enabled())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unit_norm ranks by the normalised score of every row; it does not combine with ",
        options.approximate.enabled ? "approximate search" : "query_rank",
        ", which pick candidate rows by the raw score; ask without one of them"));
  }
  for (size_t q = 0; q < queries.size(); ++q) {
    if (absl::Status s = ValidateQuery(queries[q], static_cast<int64_t>(q)); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace tda
