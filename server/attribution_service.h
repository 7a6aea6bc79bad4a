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
// Thread-safety: all methods may run concurrently (Attributor's query methods are const and
// thread-safe); Attribute calls beyond the query slots wait for a free one (QuerySlots).
#pragma once

#include <memory>

#include "attribution/attributor.h"
#include "server/index_verifier.h"
#include "server/query_slots.h"
#include "tda/v1/attribution.grpc.pb.h"

namespace tda {

class AttributionServiceImpl final : public v1::AttributionService::Service {
 public:
  // At most `query_slots` Attribute calls compute at once; the others wait in arrival order.
  explicit AttributionServiceImpl(std::shared_ptr<const Attributor> attributor,
                                  std::shared_ptr<const IndexVerifier> verifier = nullptr,
                                  int query_slots = 1);

  grpc::Status Attribute(grpc::ServerContext* context, const v1::AttributeRequest* request,
                         v1::AttributeResponse* response) override;
  grpc::Status DescribeIndex(grpc::ServerContext* context, const v1::DescribeIndexRequest* request,
                             v1::DescribeIndexResponse* response) override;
  grpc::Status GetSample(grpc::ServerContext* context, const v1::GetSampleRequest* request,
                         v1::GetSampleResponse* response) override;

 private:
  std::shared_ptr<const Attributor> attributor_;
  std::shared_ptr<const IndexVerifier> verifier_;
  QuerySlots query_slots_;
};

}  // namespace tda
