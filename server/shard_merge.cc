#include "server/shard_merge.h"

#include <algorithm>
#include <limits>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "api/api_conversion.h"
#include "attribution/readable_scores.h"

namespace tda {
namespace {

// Keeps the first top_k of `hits` in the order `before` defines.
template <typename Before>
void KeepTop(std::vector<Hit>* hits, int64_t top_k, Before before) {
  std::stable_sort(hits->begin(), hits->end(), before);
  if (static_cast<int64_t>(hits->size()) > top_k) hits->resize(static_cast<size_t>(top_k));
}

}  // namespace

absl::Status MergeShardAnswers(const std::vector<ShardAnswer>& answers, int64_t top_k,
                               bool return_scores, int64_t total_rows,
                               std::vector<QueryResult>* results) {
  for (size_t q = 0; q < results->size(); ++q) {
    QueryResult& result = (*results)[q];
    result.proponents.clear();
    result.opponents.clear();
    result.source_totals.clear();
    if (return_scores) {
      result.scores.assign(static_cast<size_t>(total_rows),
                           std::numeric_limits<float>::quiet_NaN());
    }
    std::map<std::string, size_t> source_position;
    for (const ShardAnswer& answer : answers) {
      if (answer.response->results_size() != static_cast<int>(results->size())) {
        return absl::InternalError(absl::StrCat("the shard of rows from ", answer.first_row,
                                                " answered ", answer.response->results_size(),
                                                " results for ", results->size(), " queries"));
      }
      QueryResult part = QueryResultFromProto(answer.response->results(static_cast<int>(q)));
      for (Hit& hit : part.proponents) result.proponents.push_back(std::move(hit));
      for (Hit& hit : part.opponents) result.opponents.push_back(std::move(hit));
      for (const SourceTotal& total : part.source_totals) {
        auto [it, added] = source_position.emplace(total.source, result.source_totals.size());
        if (added) {
          result.source_totals.push_back(total);
        } else {
          result.source_totals[it->second].sum += total.sum;
          result.source_totals[it->second].count += total.count;
        }
      }
      if (!return_scores) continue;
      if (static_cast<int64_t>(part.scores.size()) != answer.rows) {
        return absl::InternalError(absl::StrCat("the shard of rows from ", answer.first_row,
                                                " answered ", part.scores.size(), " scores for ",
                                                answer.rows, " rows"));
      }
      std::copy(part.scores.begin(), part.scores.end(), result.scores.begin() + answer.first_row);
    }
    KeepTop(&result.proponents, top_k, [](const Hit& a, const Hit& b) {
      return a.score > b.score || (a.score == b.score && a.row < b.row);
    });
    KeepTop(&result.opponents, top_k, [](const Hit& a, const Hit& b) {
      return a.score < b.score || (a.score == b.score && a.row < b.row);
    });
    // Ranked among the whole index: the answering shards' live rows, and the rows of any
    // missing shard (allow_partial) counted as live.
    int64_t live = total_rows;
    for (const ShardAnswer& answer : answers) live -= answer.rows;
    for (const SourceTotal& total : result.source_totals) live += total.count;
    SetReadableScores(live, &result.proponents, &result.opponents);
  }
  return absl::OkStatus();
}

}  // namespace tda
