#include "server/attribution_service.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/time/clock.h"
#include "api/api_conversion.h"
#include "api/index_description.h"
#include "api/self_influence_conversion.h"
#include "api/status_conversion.h"
#include "attribution/query_validation.h"
#include "server/caller.h"
#include "server/caller_role.h"
#include "server/freed_memory.h"
#include "server/path_hiding.h"

namespace tda {
namespace {

// The call's deadline and its client's cancellation, as the engine's Cancellation.
Cancellation CallCancellation(grpc::ServerContext* context) {
  const std::chrono::system_clock::time_point deadline = context->deadline();
  return Cancellation(
      deadline == std::chrono::system_clock::time_point::max() ? absl::InfiniteFuture()
                                                               : absl::FromChrono(deadline),
      [context] { return context->IsCancelled(); });
}

}  // namespace

AttributionServiceImpl::AttributionServiceImpl(std::shared_ptr<const Attributor> attributor,
                                               std::shared_ptr<const IndexVerifier> verifier,
                                               const AttributionLimits& limits)
    : attributor_(std::move(attributor)),
      verifier_(std::move(verifier)),
      query_slots_(limits.query_slots, limits.max_queued),
      caller_quota_(limits.per_caller) {}

grpc::Status AttributionServiceImpl::Attribute(grpc::ServerContext* context,
                                               const v1::AttributeRequest* request,
                                               v1::AttributeResponse* response) {
  // Large requests leave large freed buffers behind (the request's bytes as gRPC received
  // them, its parse): hand them back to the OS when the call is done with them.
  const absl::Cleanup trim = [request, response] {
    ReturnFreedMemoryAfter(std::max(request->ByteSizeLong(), response->ByteSizeLong()));
  };
  if (verifier_ != nullptr && !verifier_->status().ok()) return ToGrpcStatus(verifier_->status());
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
  absl::StatusOr<std::vector<QueryResult>> results;
  {
    if (absl::Status s = query_slots_.Acquire(options.cancellation); !s.ok()) {
      return ToGrpcStatus(s);
    }
    const absl::Cleanup release = [this] { query_slots_.Release(); };
    results = attributor_->Attribute(queries, options);
  }
  if (!results.ok()) return ToGrpcStatus(results.status());
  *response = AttributeResponseToProto(*results, options.method, attributor_->index().rows());
  return grpc::Status::OK;
}

grpc::Status AttributionServiceImpl::DescribeIndex(grpc::ServerContext* context,
                                                   const v1::DescribeIndexRequest* request,
                                                   v1::DescribeIndexResponse* response) {
  *response = DescribeAttributor(*attributor_);
  HidePaths(CallerRole(*context), response);
  v1::IndexVerification* verification = response->mutable_verification();
  if (verifier_ == nullptr) {  // opened with full verification
    verification->set_state(v1::IndexVerification::VERIFIED);
  } else {
    switch (verifier_->state()) {
      case IndexVerifier::State::kVerifying:
        verification->set_state(v1::IndexVerification::VERIFYING);
        break;
      case IndexVerifier::State::kVerified:
        verification->set_state(v1::IndexVerification::VERIFIED);
        break;
      case IndexVerifier::State::kFailed:
        verification->set_state(v1::IndexVerification::FAILED);
        verification->set_error(std::string(verifier_->status().message()));
        break;
    }
    verification->set_bytes_checked(verifier_->bytes_checked());
    verification->set_bytes_total(verifier_->bytes_total());
  }
  return grpc::Status::OK;
}

grpc::Status AttributionServiceImpl::GetSample(grpc::ServerContext* context,
                                               const v1::GetSampleRequest* request,
                                               v1::GetSampleResponse* response) {
  if (verifier_ != nullptr && !verifier_->status().ok()) return ToGrpcStatus(verifier_->status());
  absl::StatusOr<SampleData> sample = attributor_->GetSample(request->sample_id());
  if (!sample.ok()) return ToGrpcStatus(sample.status());
  *response = SampleToProto(*sample, attributor_->index().FindRow(request->sample_id()));
  return grpc::Status::OK;
}

grpc::Status AttributionServiceImpl::SelfInfluence(grpc::ServerContext* context,
                                                   const v1::SelfInfluenceRequest* request,
                                                   v1::SelfInfluenceResponse* response) {
  if (verifier_ != nullptr && !verifier_->status().ok()) return ToGrpcStatus(verifier_->status());
  absl::StatusOr<SelfInfluenceQuery> query = SelfInfluenceRequestFromProto(*request);
  if (!query.ok()) return ToGrpcStatus(query.status());
  std::shared_ptr<const Eigen::VectorXd> values = self_influence_.Find(*query);
  if (values == nullptr) {
    const std::string caller = CallerName(*context);
    if (absl::Status s = caller_quota_.Enter(caller); !s.ok()) return ToGrpcStatus(s);
    const absl::Cleanup leave = [this, &caller] { caller_quota_.Leave(caller); };
    if (absl::Status s = query_slots_.Acquire(CallCancellation(context)); !s.ok()) {
      return ToGrpcStatus(s);
    }
    const absl::Cleanup release = [this] { query_slots_.Release(); };
    absl::StatusOr<Eigen::VectorXd> computed =
        query->by_document ? attributor_->DocumentSelfInfluence(query->options)
                           : attributor_->SelfInfluence(query->options);
    if (!computed.ok()) return ToGrpcStatus(computed.status());
    values = self_influence_.Insert(*query, std::move(*computed));
  }
  *response = SelfInfluenceResponseToProto(*attributor_, *query, *values);
  return grpc::Status::OK;
}

}  // namespace tda
