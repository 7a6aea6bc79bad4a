// Client library for a running tda-server: the AttributionBackend interface over gRPC, plus
// the raw RPCs and the standard health check for tools and tests. Requests and replies are
// translated with server/api_conversion.h, the same code the server uses, and gRPC errors come
// back as absl::Status with the server's code and message (prefixed with the RPC and address).
//
// Thread-safety: all methods may be called concurrently (one shared channel).
#pragma once

#include <grpcpp/channel.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/attribution_backend.h"
#include "client/channel.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tda/v1/attribution.grpc.pb.h"

namespace tda {

class RemoteAttributor : public AttributionBackend {
 public:
  struct Options {
    double connect_timeout_seconds = 10;  // waiting for the channel to become ready
    double call_timeout_seconds = 600;    // deadline of each RPC
    int max_message_bytes = 1 << 30;      // largest response accepted
    // The served index every call names (AttributeRequest.index); "" = the server's only one.
    std::string index_name;
  };

  // Connects to ADDR (host:port, plaintext, no token) and waits until the channel is ready;
  // kUnavailable at once when the connection is refused, or when nothing answers within
  // connect_timeout_seconds.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<RemoteAttributor>> Connect(const std::string& address);
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<RemoteAttributor>> Connect(const std::string& address,
                                                                   const Options& options);
  // With TLS and a token as `connection` says (client/channel.h); its timeout and message
  // size are replaced by `options`'.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<RemoteAttributor>> Connect(
      const ConnectionOptions& connection, const Options& options);

  [[nodiscard]] absl::StatusOr<std::vector<QueryResult>> Attribute(
      const std::vector<Query>& queries, const AttributeOptions& options) const override;
  [[nodiscard]] absl::StatusOr<SampleData> GetSample(const std::string& id) const override;
  [[nodiscard]] absl::StatusOr<v1::DescribeIndexResponse> Describe() const override;

  // The Attribute RPC with a hand-made request (tests send malformed ones on purpose).
  [[nodiscard]] absl::StatusOr<v1::AttributeResponse> AttributeRaw(const v1::AttributeRequest& request) const;
  [[nodiscard]] absl::StatusOr<v1::GetSampleResponse> GetSampleRaw(const std::string& id) const;
  // Every index the server knows, with its versions' states.
  [[nodiscard]] absl::StatusOr<v1::ListIndexesResponse> ListIndexes() const;

  // grpc.health.v1.Health/Check for `service` ("" = the whole server).
  [[nodiscard]] absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus> CheckHealth(
      const std::string& service = "") const;

  const std::string& address() const { return address_; }

 private:
  RemoteAttributor() = default;
  void PrepareContext(grpc::ClientContext* context) const;

  std::string address_;
  Options options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::AttributionService::Stub> stub_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
};

}  // namespace tda
