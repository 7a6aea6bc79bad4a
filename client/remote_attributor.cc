#include "client/remote_attributor.h"

#include <grpcpp/client_context.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "api/api_conversion.h"
#include "api/status_conversion.h"

namespace tda {

namespace {

std::chrono::system_clock::time_point After(double seconds) {
  return std::chrono::system_clock::now() +
         std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
}

}  // namespace

absl::StatusOr<std::unique_ptr<RemoteAttributor>> RemoteAttributor::Connect(
    const std::string& address) {
  return Connect(address, Options{});
}

absl::StatusOr<std::unique_ptr<RemoteAttributor>> RemoteAttributor::Connect(
    const std::string& address, const Options& options) {
  ConnectionOptions connection;
  connection.address = address;
  return Connect(connection, options);
}

absl::StatusOr<std::unique_ptr<RemoteAttributor>> RemoteAttributor::Connect(
    const ConnectionOptions& connection, const Options& options) {
  if (connection.address.empty()) return absl::InvalidArgumentError("server address is empty");
  auto remote = std::unique_ptr<RemoteAttributor>(new RemoteAttributor());
  remote->address_ = connection.address;
  remote->options_ = options;
  ConnectionOptions with_options = connection;
  with_options.connect_timeout_seconds = options.connect_timeout_seconds;
  with_options.max_message_bytes = options.max_message_bytes;
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = ConnectChannel(with_options);
  if (!channel.ok()) return channel.status();
  remote->channel_ = std::move(*channel);
  remote->stub_ = v1::AttributionService::NewStub(remote->channel_);
  remote->health_ = grpc::health::v1::Health::NewStub(remote->channel_);
  return remote;
}

void RemoteAttributor::PrepareContext(grpc::ClientContext* context) const {
  context->set_deadline(After(options_.call_timeout_seconds));
}

absl::StatusOr<v1::AttributeResponse> RemoteAttributor::AttributeRaw(
    const v1::AttributeRequest& request) const {
  grpc::ClientContext context;
  PrepareContext(&context);
  v1::AttributeRequest named = request;
  if (named.index().empty()) named.set_index(options_.index_name);
  v1::AttributeResponse response;
  grpc::Status status = stub_->Attribute(&context, named, &response);
  if (!status.ok()) return FromGrpcStatus(status, absl::StrCat("Attribute at ", address_));
  return response;
}

absl::StatusOr<std::vector<QueryResult>> RemoteAttributor::Attribute(
    const std::vector<Query>& queries, const AttributeOptions& options) const {
  absl::StatusOr<v1::AttributeResponse> response =
      AttributeRaw(AttributeRequestToProto(queries, options));
  if (!response.ok()) return response.status();
  return AttributeResponseFromProto(*response);
}

absl::StatusOr<v1::GetSampleResponse> RemoteAttributor::GetSampleRaw(const std::string& id) const {
  grpc::ClientContext context;
  PrepareContext(&context);
  v1::GetSampleRequest request;
  request.set_sample_id(id);
  request.set_index(options_.index_name);
  v1::GetSampleResponse response;
  grpc::Status status = stub_->GetSample(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status, absl::StrCat("GetSample at ", address_));
  return response;
}

absl::StatusOr<SampleData> RemoteAttributor::GetSample(const std::string& id) const {
  absl::StatusOr<v1::GetSampleResponse> response = GetSampleRaw(id);
  if (!response.ok()) return response.status();
  return SampleFromProto(*response);
}

absl::StatusOr<v1::DescribeIndexResponse> RemoteAttributor::Describe() const {
  grpc::ClientContext context;
  PrepareContext(&context);
  v1::DescribeIndexRequest request;
  request.set_index(options_.index_name);
  v1::DescribeIndexResponse response;
  grpc::Status status = stub_->DescribeIndex(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status, absl::StrCat("DescribeIndex at ", address_));
  return response;
}

absl::StatusOr<v1::ListIndexesResponse> RemoteAttributor::ListIndexes() const {
  grpc::ClientContext context;
  PrepareContext(&context);
  v1::ListIndexesResponse response;
  grpc::Status status = stub_->ListIndexes(&context, v1::ListIndexesRequest(), &response);
  if (!status.ok()) return FromGrpcStatus(status, absl::StrCat("ListIndexes at ", address_));
  return response;
}

absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus> RemoteAttributor::CheckHealth(
    const std::string& service) const {
  grpc::ClientContext context;
  PrepareContext(&context);
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = health_->Check(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status, absl::StrCat("Health/Check at ", address_));
  return response.status();
}

}  // namespace tda
