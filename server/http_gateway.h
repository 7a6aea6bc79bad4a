// The JSON-over-HTTP API of tda-server (README "From curl"): each HTTP route is forwarded as a
// gRPC call to the server itself, the way grpc-gateway works, so validation, limits, bearer
// tokens and roles are exactly the gRPC API's:
//
//   POST   /v1/attribute            AttributionService.Attribute      body AttributeRequest
//   GET    /v1/indexes              AttributionService.ListIndexes
//   GET    /v1/indexes/{name}       AttributionService.DescribeIndex  (index = name)
//   GET    /v1/samples/{id}         AttributionService.GetSample      (id may contain '/')
//   POST   /v1/self-influence       AttributionService.SelfInfluence  body SelfInfluenceRequest
//   GET    /v1/self-influence?top_k=&method=&by_document=   the same, from query parameters
//   POST   /v1/jobs                 JobService.SubmitJob              body SubmitJobRequest
//   GET    /v1/jobs?state=&limit=   JobService.ListJobs
//   GET    /v1/jobs/{id}            JobService.GetJob
//   POST   /v1/jobs/{id}:cancel     JobService.CancelJob
//   GET    /v1/jobs/{id}:watch      JobService.WatchJob: newline-delimited JSON, one JobUpdate
//                                   per line as it comes, until the job's final state
//   POST   /v1/schedules            JobService.CreateSchedule         body CreateScheduleRequest
//   GET    /v1/schedules            JobService.ListSchedules
//   DELETE /v1/schedules/{id}       JobService.DeleteSchedule
//
// Bodies use protobuf's canonical JSON mapping (lowerCamelCase names, proto names accepted on
// input; int64 as strings; enums by name; default values printed). The HTTP header
// "Authorization: Bearer TOKEN" is forwarded as the call's authorization metadata. Errors are
// {"code": N, "status": "NAME", "message": "..."} (google.rpc.Status: N the gRPC code) with the
// HTTP status of Google's HTTP/JSON transcoding (HttpStatusForGrpcCode); a body that is not
// valid JSON for the request message is 400 INVALID_ARGUMENT naming the message type.
//
// Deadlines: a request header "grpc-timeout: 500m" (gRPC's format: 1-8 digits and a unit H, M,
// S, m, u, n) or "X-Timeout-Seconds: 2.5" sets the forwarded call's deadline (for a watch: of
// the whole watch); when it passes the answer is 504 DEADLINE_EXCEEDED. A malformed one is 400.
//
// The calls go to a private gRPC port: a Unix socket in a fresh 0700 directory (only the
// server's user can connect), with the server's token processor when it has one (local UDS
// credentials) -- so the HTTP side never needs the server's TLS trust or client certificates,
// and each request opens its own connection (tda-server pins one token per connection).
// Thread-safety: routes run concurrently on the listener's threads.
#pragma once

#include <grpcpp/security/auth_metadata_processor.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/support/status_code_enum.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace httplib {
class Server;
}

namespace tda {

// The HTTP status Google's transcoding gives a gRPC code (OK 200, INVALID_ARGUMENT 400,
// UNAUTHENTICATED 401, PERMISSION_DENIED 403, NOT_FOUND 404, RESOURCE_EXHAUSTED 429, UNIMPLEMENTED
// 501, UNAVAILABLE 503, DEADLINE_EXCEEDED 504, ...).
int HttpStatusForGrpcCode(grpc::StatusCode code);

class JsonGateway {
 public:
  // Creates the private socket directory and adds its listening port to `builder` (call before
  // BuildAndStart), authenticating with `processor` when not null. kInternal when no private
  // directory can be made.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<JsonGateway>> AddPrivatePort(
      std::shared_ptr<grpc::AuthMetadataProcessor> processor, int64_t max_message_bytes,
      grpc::ServerBuilder* builder);
  ~JsonGateway();  // removes the socket and its directory

  // Registers the routes above on an HTTP listener's routes (server/http_listener.h).
  void AddRoutes(httplib::Server* routes) const;

 private:
  JsonGateway() = default;
  std::string socket_dir_;
  std::string grpc_target_;  // "unix:<socket_dir_>/grpc.sock"
  bool local_credentials_ = false;
  int64_t max_message_bytes_ = 0;
};

}  // namespace tda
