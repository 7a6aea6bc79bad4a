// tda.v1.AttributionService of a router (tda-server --router SHARDMAP): the rows of one index
// live on shard servers (index/shard_map.h; each an ordinary tda-server of a shard written by
// `tda index split`), and the router answers Attribute exactly as one server of the whole
// index would.
//
// Attribute: the router computes each query's gradient and preconditioned, projected vector
// once, from its local index (the shard map's local_index: the same model and curvature
// factors as every shard; Attributor::PrepareQueries, in a query slot), sends the vectors to
// every shard at once (ShardService.ScoreShard; each call carries the incoming call's
// remaining deadline, less a tenth of it (at most 200 ms) kept to merge and answer, and is
// cancelled with it) and merges the answers (server/shard_merge.h).
// A shard that fails makes the call fail with the shard's code (UNAVAILABLE when it is down,
// DEADLINE_EXCEEDED when it is late) and a message naming its address and row range; with
// AttributeRequest.allow_partial the router answers from the shards that did answer and
// lists the others in AttributeResponse.missing_shards (all failing: the first error).
// Refused with INVALID_ARGUMENT: token_scores and group_by_document (they need the training
// documents of every shard) and LiSSA / exact (their curvature is over every training row).
// Text queries get no shared spans.
//
// DescribeIndex, ListIndexes and GetSample answer from the local index, with rows set to the
// whole index's (GetSample's row is known for the local index's rows only); SelfInfluence is
// UNIMPLEMENTED (ask the shards). Thread-safety: all methods may run concurrently.
#pragma once

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "index/shard_map.h"
#include "server/attribution_service.h"
#include "server/index_repository.h"
#include "server/query_slots.h"
#include "tda/v1/shard.grpc.pb.h"

namespace tda {

class RouterServiceImpl final : public v1::AttributionService::Service {
 public:
  // `local` serves the shard map's local index from `repository` (both must outlive the
  // router). kFailedPrecondition when the local index is neither a shard of the map's parent
  // nor the parent itself; kInvalidArgument for unusable security files.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<RouterServiceImpl>> Create(
      const ShardMap& map, const IndexRepository* repository, AttributionServiceImpl* local,
      const AttributionLimits& limits, int max_message_bytes);

  grpc::Status Attribute(grpc::ServerContext* context, const v1::AttributeRequest* request,
                         v1::AttributeResponse* response) override;
  grpc::Status DescribeIndex(grpc::ServerContext* context, const v1::DescribeIndexRequest* request,
                             v1::DescribeIndexResponse* response) override;
  grpc::Status ListIndexes(grpc::ServerContext* context, const v1::ListIndexesRequest* request,
                           v1::ListIndexesResponse* response) override;
  grpc::Status GetSample(grpc::ServerContext* context, const v1::GetSampleRequest* request,
                         v1::GetSampleResponse* response) override;
  grpc::Status SelfInfluence(grpc::ServerContext* context, const v1::SelfInfluenceRequest* request,
                             v1::SelfInfluenceResponse* response) override;

 private:
  struct Shard {
    ShardMapEntry entry;
    std::unique_ptr<v1::ShardService::Stub> stub;
  };
  RouterServiceImpl(ShardMap map, const IndexRepository* repository, AttributionServiceImpl* local,
                    const AttributionLimits& limits);

  const ShardMap map_;
  const IndexRepository* repository_;
  AttributionServiceImpl* local_;
  QuerySlots query_slots_;
  std::vector<Shard> shards_;
};

}  // namespace tda
