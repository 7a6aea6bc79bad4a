// tda.v1.ShardService (proto/tda/v1/shard.proto), served by every tda-server beside
// AttributionService: scores the rows of a served shard index (one written by `tda index
// split`) against preconditioned query vectors a router (server/router_service.h) computed,
// and answers the shard's top-k, per-source sums and (when asked) scores with GLOBAL row
// numbers (the manifest's shard_of.first_row + the local row).
//
// The request names what the router expects (parent manifest checksum, row range, dimension):
// a served index that is not that shard is FAILED_PRECONDITION, so a wrong address in a shard
// map never mixes rows of different indexes. Calls take a query slot of their own pool (the
// same limits as Attribute's, AttributionLimits) and stop at the call's deadline or
// cancellation (DEADLINE_EXCEEDED / CANCELLED) within one row block of the scan.
// Thread-safety: all methods may run concurrently.
#pragma once

#include "server/attribution_service.h"
#include "server/caller_quota.h"
#include "server/index_repository.h"
#include "server/query_slots.h"
#include "tda/v1/shard.grpc.pb.h"

namespace tda {

class ShardServiceImpl final : public v1::ShardService::Service {
 public:
  // `repository` must outlive the service.
  ShardServiceImpl(const IndexRepository* repository, const AttributionLimits& limits);

  grpc::Status ScoreShard(grpc::ServerContext* context, const v1::ScoreShardRequest* request,
                          v1::ScoreShardResponse* response) override;

 private:
  const IndexRepository* repository_;
  QuerySlots query_slots_;
  CallerQuota caller_quota_;
};

}  // namespace tda
