#include "api/self_influence_conversion.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "api/api_conversion.h"

namespace tda {

absl::StatusOr<SelfInfluenceQuery> SelfInfluenceRequestFromProto(
    const v1::SelfInfluenceRequest& request) {
  SelfInfluenceQuery query;
  query.top_k = request.has_top_k() ? request.top_k() : kDefaultTopK;
  if (query.top_k < 1 || query.top_k > kMaxTopK) {
    return absl::InvalidArgumentError(
        absl::StrCat("top_k must be in [1, ", kMaxTopK, "], got ", query.top_k));
  }
  absl::StatusOr<Method> method = MethodFromProto(request.method());
  if (!method.ok()) return method.status();
  query.options.method = *method;
  query.options.damping = DampingFromProto(request.damping());
  if (query.options.damping.has_value()) {
    const double lambda = query.options.damping->absolute.value_or(query.options.damping->relative);
    if (!std::isfinite(lambda) || lambda < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(query.options.damping->absolute.has_value() ? "absolute" : "relative",
                       " damping must be a finite number >= 0, got ", lambda));
    }
  }
  query.by_document = request.by_document();
  return query;
}

v1::SelfInfluenceResponse SelfInfluenceResponseToProto(const Attributor& attributor,
                                                       const SelfInfluenceQuery& query,
                                                       const Eigen::VectorXd& values) {
  const int64_t n = values.size();
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  // Deleted rows are NaN: they rank last and are never returned.
  auto higher = [&values](int64_t a, int64_t b) {
    if (std::isnan(values[a])) return false;
    return std::isnan(values[b]) || values[a] > values[b];
  };
  const int64_t top = std::min(query.top_k, n);
  std::partial_sort(order.begin(), order.begin() + top, order.end(), higher);
  std::vector<double> finite;
  finite.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isnan(values[i])) finite.push_back(values[i]);
  }

  v1::SelfInfluenceResponse response;
  response.set_method(MethodToProto(query.options.method));
  response.set_count(static_cast<int64_t>(finite.size()));
  if (!finite.empty()) {
    auto middle = finite.begin() + static_cast<std::ptrdiff_t>(finite.size() / 2);
    std::nth_element(finite.begin(), middle, finite.end());
    response.set_median(*middle);
  }
  const GradientIndex& index = attributor.index();
  const IndexDocuments& documents = attributor.documents();
  for (int64_t rank = 0; rank < top && !std::isnan(values[order[rank]]); ++rank) {
    const int64_t i = order[rank];
    v1::SelfInfluenceEntry* entry = response.add_entries();
    entry->set_score(values[i]);
    int64_t row = i;
    if (query.by_document) {
      const std::vector<int64_t> rows = documents.live_rows(i);
      row = rows.empty() ? -1 : rows.front();
      entry->set_sample_id(documents.id(i));
      entry->set_source(documents.source(i));
      entry->set_chunks(static_cast<int64_t>(rows.size()));
    } else {
      entry->set_sample_id(index.sample(i).id);
      entry->set_source(index.sample(i).source);
      entry->set_chunks(1);
    }
    entry->set_row(row);
    if (row >= 0) {
      entry->set_label(index.sample(row).label);
      entry->set_preview(index.sample(row).preview);
    }
  }
  return response;
}

}  // namespace tda
