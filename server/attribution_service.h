// tda.v1.AttributionService on top of the served indexes (server/index_repository.h). A thin
// adapter in the manner of TensorFlow Serving's model_servers/: each method translates the request
// (api_conversion.h), calls the engine, and translates the reply; engine errors become gRPC status
// codes through ToGrpcStatus (a malformed request is INVALID_ARGUMENT with the engine's message,
// and the server stays up).
//
// Each call resolves its request's `index` name to the version serving it and holds that
// version (a shared_ptr) until it ends, so a version swapped out meanwhile answers its calls
// in flight. Attribute and GetSample answer DATA_LOSS naming the damaged file once that
// index's background verification has failed; DescribeIndex reports the verification state.
//
// Limits and deadlines of Attribute (AttributionLimits): calls beyond the query slots wait for a
// free one in arrival order (QuerySlots); beyond max_queued waiting calls, or beyond
// per_caller calls of one caller (CallerQuota, by tda::CallerName) in flight or queued, a call
// is RESOURCE_EXHAUSTED at once. A call whose deadline passes or that its client cancels --
// queued or computing -- stops (within one row block of the scan) and frees its slot, answering
// DEADLINE_EXCEEDED / CANCELLED. Large calls hand the memory they freed back to the OS
// afterwards (server/freed_memory.h), so the server's RSS does not stay at its peak.
//
// Batching (server/query_batcher.h): concurrent Attribute calls on the same index version with
// identical requests but for their queries (compared as serialized bytes, `index` and
// `queries` left out) are computed as one batch holding one slot; each caller gets its own
// answer. The call's trailing metadata `tda-batch-queries` (and the call log's
// "batch_queries") says how many queries the computation that answered it held.
//
// Thread-safety: all methods may run concurrently (Attributor's query methods are const and
// thread-safe).
#pragma once

#include <memory>

#include "attribution/attributor.h"
#include "server/caller_quota.h"
#include "server/index_repository.h"
#include "server/query_batcher.h"
#include "server/query_slots.h"
#include "tda/v1/attribution.grpc.pb.h"

namespace tda {

class ServerMetrics;  // server/server_metrics.h

struct AttributionLimits {
  int query_slots = 1;  // Attribute calls computing at once
  int max_queued = 64;  // calls waiting for a slot (0: no bound)
  int per_caller = 0;   // calls of one caller in flight or queued (0: no bound)
  BatchingOptions batching;  // cross-request batching of Attribute (timeout zero: off)
};

// The trailing metadata key that carries the number of queries computed with an Attribute call.
inline constexpr char kBatchQueriesMetadata[] = "tda-batch-queries";

class AttributionServiceImpl final : public v1::AttributionService::Service {
 public:
  // Serves the indexes of `repository` (which must outlive the service) by request name.
  explicit AttributionServiceImpl(const IndexRepository* repository,
                                  const AttributionLimits& limits = {});

  grpc::Status Attribute(grpc::ServerContext* context, const v1::AttributeRequest* request,
                         v1::AttributeResponse* response) override;
  grpc::Status DescribeIndex(grpc::ServerContext* context, const v1::DescribeIndexRequest* request,
                             v1::DescribeIndexResponse* response) override;
  grpc::Status ListIndexes(grpc::ServerContext* context, const v1::ListIndexesRequest* request,
                           v1::ListIndexesResponse* response) override;
  grpc::Status GetSample(grpc::ServerContext* context, const v1::GetSampleRequest* request,
                         v1::GetSampleResponse* response) override;
  // Computed once per index version and (method, damping, by_document) in a query slot, then
  // ranked from the values the version keeps (IndexVersion::self_influence).
  grpc::Status SelfInfluence(grpc::ServerContext* context, const v1::SelfInfluenceRequest* request,
                             v1::SelfInfluenceResponse* response) override;

  // Read at scrape time by the metrics (server/server_metrics.h).
  const QuerySlots& query_slots() const { return query_slots_; }
  // Attribute records its batches and scans there from now on (null: not at all). `metrics`
  // must outlive the service; set before the server starts.
  void set_metrics(ServerMetrics* metrics) { metrics_ = metrics; }

 private:
  const IndexRepository* repository_;
  QuerySlots query_slots_;
  QueryBatcher batcher_;  // after query_slots_, which it uses
  ServerMetrics* metrics_ = nullptr;
  CallerQuota caller_quota_;
};

}  // namespace tda
