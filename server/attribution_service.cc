#include "server/attribution_service.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/time/clock.h"
#include "api/api_conversion.h"
#include "api/index_description.h"
#include "api/self_influence_conversion.h"
#include "api/status_conversion.h"
#include "attribution/low_rank_queries.h"
#include "attribution/query_validation.h"
#include "index/manifest.h"
#include "server/call_cancellation.h"
#include "server/caller.h"
#include "server/caller_role.h"
#include "server/freed_memory.h"
#include "server/path_hiding.h"
#include "server/server_metrics.h"

namespace tda {
namespace {

// What must be equal for two calls to share a batch: the whole request but its queries and
// its index name (the version is compared separately), as deterministic bytes.
std::string BatchKey(const v1::AttributeRequest& request) {
  v1::AttributeRequest shape = request;
  shape.clear_queries();
  shape.clear_index();
  std::string key;
  {
    google::protobuf::io::StringOutputStream stream(&key);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    shape.SerializeToCodedStream(&coded);
  }
  return key;
}

}  // namespace

AttributionServiceImpl::AttributionServiceImpl(const IndexRepository* repository,
                                               const AttributionLimits& limits)
    : repository_(repository),
      query_slots_(limits.query_slots, limits.max_queued),
      batcher_(&query_slots_, limits.query_slots, limits.max_queued, limits.batching),
      caller_quota_(limits.per_caller) {}

grpc::Status AttributionServiceImpl::Attribute(grpc::ServerContext* context,
                                               const v1::AttributeRequest* request,
                                               v1::AttributeResponse* response) {
  // Large requests leave large freed buffers behind (the request's bytes as gRPC received
  // them, its parse): hand them back to the OS when the call is done with them.
  const absl::Cleanup trim = [request, response] {
    ReturnFreedMemoryAfter(std::max(request->ByteSizeLong(), response->ByteSizeLong()));
  };
  absl::StatusOr<std::shared_ptr<const IndexVersion>> index = repository_->Find(request->index());
  if (!index.ok()) return ToGrpcStatus(index.status());
  const Attributor& attributor = (*index)->attributor();
  std::vector<Query> queries;
  AttributeOptions options;
  if (absl::Status s = AttributeRequestFromProto(*request, &queries, &options); !s.ok()) {
    return ToGrpcStatus(s);
  }
  // Malformed requests are refused before they may wait for a slot.
  if (absl::Status s = ValidateAttributeRequest(queries, options); !s.ok()) return ToGrpcStatus(s);
  options.cancellation = CallCancellation(context);
  const std::string caller = CallerName(*context);
  if (absl::Status s = caller_quota_.Enter(caller); !s.ok()) return ToGrpcStatus(s);
  const absl::Cleanup leave = [this, &caller] { caller_quota_.Leave(caller); };
  // A low-rank call runs alone: its basis is of its own queries (attribution/low_rank_queries.h).
  const bool may_batch =
      !options.low_rank.enabled() && batcher_.WouldBatch(static_cast<int64_t>(queries.size()));
  if (options.low_rank.enabled() &&
      !LowRankPays(static_cast<int64_t>(queries.size()), options.low_rank.rank)) {
    std::cerr << "tda-server: query_rank " << options.low_rank.rank
              << " is not below the call's number of queries (" << queries.size()
              << "); scored exactly\n";
  }
  int64_t batch_queries = 0;
  const absl::StatusOr<std::vector<QueryResult>> results =
      batcher_.Attribute(std::shared_ptr<const Attributor>(*index, &attributor),
                         may_batch ? BatchKey(*request) : "", queries, options, &batch_queries);
  if (batch_queries > 0) {
    context->AddTrailingMetadata(kBatchQueriesMetadata, std::to_string(batch_queries));
  }
  if (metrics_ != nullptr && batch_queries > 0) {
    // Per answered call: the size of the computation that answered it, and its share of that
    // computation's scan (so that the shares of a batch's members add up to one scan).
    metrics_->RecordBatch((*index)->name(), batch_queries);
    // An ensemble's scan reads the rows of every member the call used.
    const int64_t members = attributor.MembersUsed(options).value_or(1);
    int64_t shard_bytes = 0;
    for (int64_t k = 0; k < members; ++k) {
      for (const ShardEntry& shard : attributor.member(k).index().manifest().shards) {
        shard_bytes += static_cast<int64_t>(shard.file.bytes);
      }
    }
    metrics_->RecordScan((*index)->name(),
                         shard_bytes * static_cast<int64_t>(queries.size()) / batch_queries);
  }
  if (!results.ok()) return ToGrpcStatus(results.status());
  *response = AttributeResponseToProto(*results, options.method, attributor.index().rows());
  return grpc::Status::OK;
}

grpc::Status AttributionServiceImpl::DescribeIndex(grpc::ServerContext* context,
                                                   const v1::DescribeIndexRequest* request,
                                                   v1::DescribeIndexResponse* response) {
  absl::StatusOr<v1::DescribeIndexResponse> description = repository_->Describe(request->index());
  if (!description.ok()) return ToGrpcStatus(description.status());
  *response = std::move(*description);
  HidePaths(CallerRole(*context), response);
  return grpc::Status::OK;
}

grpc::Status AttributionServiceImpl::ListIndexes(grpc::ServerContext* context,
                                                 const v1::ListIndexesRequest*,
                                                 v1::ListIndexesResponse* response) {
  *response = repository_->List();
  for (v1::IndexVersionStatus& entry : *response->mutable_indexes()) {
    if (entry.has_description()) HidePaths(CallerRole(*context), entry.mutable_description());
  }
  return grpc::Status::OK;
}

grpc::Status AttributionServiceImpl::GetSample(grpc::ServerContext* context,
                                               const v1::GetSampleRequest* request,
                                               v1::GetSampleResponse* response) {
  absl::StatusOr<std::shared_ptr<const IndexVersion>> index = repository_->Find(request->index());
  if (!index.ok()) return ToGrpcStatus(index.status());
  const Attributor& attributor = (*index)->attributor();
  absl::StatusOr<SampleData> sample = attributor.GetSample(request->sample_id());
  if (!sample.ok()) return ToGrpcStatus(sample.status());
  *response = SampleToProto(*sample, attributor.index().FindRow(request->sample_id()));
  return grpc::Status::OK;
}

grpc::Status AttributionServiceImpl::SelfInfluence(grpc::ServerContext* context,
                                                   const v1::SelfInfluenceRequest* request,
                                                   v1::SelfInfluenceResponse* response) {
  absl::StatusOr<std::shared_ptr<const IndexVersion>> index = repository_->Find(request->index());
  if (!index.ok()) return ToGrpcStatus(index.status());
  const Attributor& attributor = (*index)->attributor();
  absl::StatusOr<SelfInfluenceQuery> query = SelfInfluenceRequestFromProto(*request);
  if (!query.ok()) return ToGrpcStatus(query.status());
  SelfInfluenceCache& cache = (*index)->self_influence();
  std::shared_ptr<const Eigen::VectorXd> values = cache.Find(*query);
  if (values == nullptr) {
    const std::string caller = CallerName(*context);
    if (absl::Status s = caller_quota_.Enter(caller); !s.ok()) return ToGrpcStatus(s);
    const absl::Cleanup leave = [this, &caller] { caller_quota_.Leave(caller); };
    if (absl::Status s = query_slots_.Acquire(CallCancellation(context)); !s.ok()) {
      return ToGrpcStatus(s);
    }
    const absl::Cleanup release = [this] { query_slots_.Release(); };
    absl::StatusOr<Eigen::VectorXd> computed =
        query->by_document ? attributor.DocumentSelfInfluence(query->options)
                           : attributor.SelfInfluence(query->options);
    if (!computed.ok()) return ToGrpcStatus(computed.status());
    values = cache.Insert(*query, std::move(*computed));
  }
  *response = SelfInfluenceResponseToProto(attributor, *query, *values);
  return grpc::Status::OK;
}

}  // namespace tda
