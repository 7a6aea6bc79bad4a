#include "server/attribution_service.h"

#include <utility>
#include <vector>

#include "server/api_conversion.h"
#include "server/status_conversion.h"

namespace tda {

AttributionServiceImpl::AttributionServiceImpl(std::shared_ptr<const Attributor> attributor)
    : attributor_(std::move(attributor)) {}

grpc::Status AttributionServiceImpl::Attribute(grpc::ServerContext* context,
                                               const v1::AttributeRequest* request,
                                               v1::AttributeResponse* response) {
  std::vector<Query> queries;
  AttributeOptions options;
  if (absl::Status s = AttributeRequestFromProto(*request, &queries, &options); !s.ok()) {
    return ToGrpcStatus(s);
  }
  absl::StatusOr<std::vector<QueryResult>> results = attributor_->Attribute(queries, options);
  if (!results.ok()) return ToGrpcStatus(results.status());
  *response = AttributeResponseToProto(*results, options.method, attributor_->index().rows());
  return grpc::Status::OK;
}

grpc::Status AttributionServiceImpl::DescribeIndex(grpc::ServerContext* context,
                                                   const v1::DescribeIndexRequest* request,
                                                   v1::DescribeIndexResponse* response) {
  *response = DescribeAttributor(*attributor_);
  return grpc::Status::OK;
}

grpc::Status AttributionServiceImpl::GetSample(grpc::ServerContext* context,
                                               const v1::GetSampleRequest* request,
                                               v1::GetSampleResponse* response) {
  absl::StatusOr<SampleData> sample = attributor_->GetSample(request->sample_id());
  if (!sample.ok()) return ToGrpcStatus(sample.status());
  *response = SampleToProto(*sample, attributor_->index().FindRow(request->sample_id()));
  return grpc::Status::OK;
}

}  // namespace tda
