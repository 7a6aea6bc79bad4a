#include "server/attribution_service.h"

#include <utility>
#include <vector>

#include "api/api_conversion.h"
#include "api/status_conversion.h"
#include "server/caller_role.h"
#include "server/path_hiding.h"

namespace tda {

AttributionServiceImpl::AttributionServiceImpl(std::shared_ptr<const Attributor> attributor,
                                               std::shared_ptr<const IndexVerifier> verifier,
                                               int query_slots)
    : attributor_(std::move(attributor)),
      verifier_(std::move(verifier)),
      query_slots_(query_slots) {}

grpc::Status AttributionServiceImpl::Attribute(grpc::ServerContext* context,
                                               const v1::AttributeRequest* request,
                                               v1::AttributeResponse* response) {
  if (verifier_ != nullptr && !verifier_->status().ok()) return ToGrpcStatus(verifier_->status());
  std::vector<Query> queries;
  AttributeOptions options;
  if (absl::Status s = AttributeRequestFromProto(*request, &queries, &options); !s.ok()) {
    return ToGrpcStatus(s);
  }
  absl::StatusOr<std::vector<QueryResult>> results;
  {
    QuerySlots::Hold slot(&query_slots_);
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

}  // namespace tda
