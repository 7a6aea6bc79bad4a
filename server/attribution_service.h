// tda.v1.AttributionService on top of an open Attributor. A thin adapter in the manner of
// TensorFlow Serving's model_servers/: each method translates the request (api_conversion.h),
// calls the engine, and translates the reply; engine errors become gRPC status codes through
// ToGrpcStatus (a malformed request is INVALID_ARGUMENT with the engine's message, and the
// server stays up).
//
// With an IndexVerifier (tda-server verifies checksums in the background), Attribute and
// GetSample answer DATA_LOSS naming the damaged file once verification has failed, and
// DescribeIndex reports the verification state.
//
// Limits and deadlines of Attribute (AttributionLimits): calls beyond the query slots wait for a
// free one in arrival order (QuerySlots); beyond max_queued waiting calls, or beyond
// per_caller calls of one caller (CallerQuota, by tda::CallerName) in flight or queued, a call
// is RESOURCE_EXHAUSTED at once. A call whose deadline passes or that its client cancels --
// queued or computing -- stops (within one row block of the scan) and frees its slot, answering
// DEADLINE_EXCEEDED / CANCELLED. Large calls hand the memory they freed back to the OS
// afterwards (server/freed_memory.h), so the server's RSS does not stay at its peak.
//
// Thread-safety: all methods may run concurrently (Attributor's query methods are const and
// thread-safe).
#pragma once

#include <memory>

#include "attribution/attributor.h"
#include "server/caller_quota.h"
#include "server/index_verifier.h"
#include "server/query_slots.h"
#include "server/self_influence_cache.h"
#include "tda/v1/attribution.grpc.pb.h"

namespace tda {

struct AttributionLimits {
  int query_slots = 1;  // Attribute calls computing at once
  int max_queued = 64;  // calls waiting for a slot (0: no bound)
  int per_caller = 0;   // calls of one caller in flight or queued (0: no bound)
};

class AttributionServiceImpl final : public v1::AttributionService::Service {
 public:
  explicit AttributionServiceImpl(std::shared_ptr<const Attributor> attributor,
                                  std::shared_ptr<const IndexVerifier> verifier = nullptr,
                                  const AttributionLimits& limits = {});

  grpc::Status Attribute(grpc::ServerContext* context, const v1::AttributeRequest* request,
                         v1::AttributeResponse* response) override;
  grpc::Status DescribeIndex(grpc::ServerContext* context, const v1::DescribeIndexRequest* request,
                             v1::DescribeIndexResponse* response) override;
  grpc::Status GetSample(grpc::ServerContext* context, const v1::GetSampleRequest* request,
                         v1::GetSampleResponse* response) override;
  // Computed once per (method, damping, by_document) in a query slot, then ranked from the
  // kept values (SelfInfluenceCache).
  grpc::Status SelfInfluence(grpc::ServerContext* context, const v1::SelfInfluenceRequest* request,
                             v1::SelfInfluenceResponse* response) override;

 private:
  std::shared_ptr<const Attributor> attributor_;
  std::shared_ptr<const IndexVerifier> verifier_;
  QuerySlots query_slots_;
  CallerQuota caller_quota_;
  SelfInfluenceCache self_influence_;
};

}  // namespace tda
