#include "server/shard_service.h"

#include <cmath>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "api/api_conversion.h"
#include "api/status_conversion.h"
#include "server/call_cancellation.h"
#include "server/caller.h"

namespace tda {
namespace {

// Whether the served index is the shard the router expects.
absl::Status CheckShard(const GradientIndex& index, const v1::ScoreShardRequest& request) {
  const Manifest& m = index.manifest();
  if (!m.shard_of.has_value()) {
    return absl::FailedPreconditionError(
        absl::StrCat("index ", index.dir(),
                     " is not a shard (its manifest has no shard_of); serve a shard "
                     "written by 'tda index split' here, or fix the router's shard map"));
  }
  if (m.shard_of->parent_manifest_xxh3 != request.parent_checksum() ||
      m.shard_of->first_row != request.first_row() || m.rows != request.rows()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "index ", index.dir(), " is rows [", m.shard_of->first_row, ", ",
        m.shard_of->first_row + m.rows, ") of parent index ", m.shard_of->parent_manifest_xxh3,
        "; the router expects rows [", request.first_row(), ", ",
        request.first_row() + request.rows(), ") of parent ", request.parent_checksum(),
        ": fix the shard map or serve the right shard at this address"));
  }
  if (request.dim() != index.dim()) {
    return absl::FailedPreconditionError(absl::StrCat("index ", index.dir(), " has dimension ",
                                                      index.dim(), ", the router sent ",
                                                      request.dim()));
  }
  return absl::OkStatus();
}

// The query vectors as the dim x Q matrix ScoreQueries takes.
absl::StatusOr<Eigen::MatrixXd> QueryMatrix(const v1::ScoreShardRequest& request) {
  const int64_t dim = request.dim();
  const int64_t values = request.vectors_size();
  if (dim <= 0 || values == 0 || values % dim != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ScoreShard needs dim x queries vector values; got ", values, " values for dim ", dim));
  }
  const int64_t queries = values / dim;
  if (queries > kMaxQueriesPerRequest) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ScoreShard takes at most ", kMaxQueriesPerRequest, " queries, got ", queries));
  }
  if (request.top_k() < 1 || request.top_k() > kMaxTopK) {
    return absl::InvalidArgumentError(
        absl::StrCat("top_k must be in [1, ", kMaxTopK, "], got ", request.top_k()));
  }
  Eigen::MatrixXd matrix(dim, queries);
  for (int64_t i = 0; i < values; ++i) {
    const double v = request.vectors(static_cast<int>(i));
    if (!std::isfinite(v)) {
      return absl::InvalidArgumentError(
          absl::StrCat("query vector ", i / dim, " has a non-finite value at ", i % dim));
    }
    matrix(i % dim, i / dim) = v;
  }
  return matrix;
}

}  // namespace

ShardServiceImpl::ShardServiceImpl(const IndexRepository* repository,
                                   const AttributionLimits& limits)
    : repository_(repository),
      query_slots_(limits.query_slots, limits.max_queued),
      caller_quota_(limits.per_caller) {}

grpc::Status ShardServiceImpl::ScoreShard(grpc::ServerContext* context,
                                          const v1::ScoreShardRequest* request,
                                          v1::ScoreShardResponse* response) {
  absl::StatusOr<std::shared_ptr<const IndexVersion>> index = repository_->Find(request->index());
  if (!index.ok()) return ToGrpcStatus(index.status());
  const Attributor& attributor = (*index)->attributor();
  const GradientIndex& shard = attributor.index();
  if (absl::Status s = CheckShard(shard, *request); !s.ok()) return ToGrpcStatus(s);
  absl::StatusOr<Eigen::MatrixXd> queries = QueryMatrix(*request);
  if (!queries.ok()) return ToGrpcStatus(queries.status());
  AttributeOptions options;
  options.top_k = request->top_k();
  options.return_scores = request->return_scores();
  options.cancellation = CallCancellation(context);
  const std::string caller = CallerName(*context);
  if (absl::Status s = caller_quota_.Enter(caller); !s.ok()) return ToGrpcStatus(s);
  const absl::Cleanup leave = [this, &caller] { caller_quota_.Leave(caller); };
  std::vector<QueryResult> results(static_cast<size_t>(queries->cols()));
  {
    if (absl::Status s = query_slots_.Acquire(options.cancellation); !s.ok()) {
      return ToGrpcStatus(s);
    }
    const absl::Cleanup release = [this] { query_slots_.Release(); };
    if (absl::Status s = attributor.ScoreQueries(*queries, options, &results); !s.ok()) {
      return ToGrpcStatus(s);
    }
  }
  const int64_t first_row = shard.manifest().shard_of->first_row;
  for (QueryResult& result : results) {
    for (Hit& hit : result.proponents) hit.row += first_row;
    for (Hit& hit : result.opponents) hit.row += first_row;
    QueryResultToProto(result, response->add_results());
  }
  response->set_first_row(first_row);
  response->set_rows(shard.rows());
  response->set_total_rows(shard.manifest().shard_of->total_rows);
  response->set_parent_checksum(shard.manifest().shard_of->parent_manifest_xxh3);
  return grpc::Status::OK;
}

}  // namespace tda
