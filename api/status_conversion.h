// The one place where tda's absl::Status meets grpc::Status (TensorFlow Serving's
// grpc_status_util): the server converts engine errors to gRPC codes with ToGrpcStatus, and the
// client converts what it receives back with FromGrpcStatus. Codes map one to one (both follow
// the canonical google.rpc.Code numbering); messages pass through unchanged.
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace tda {

// absl::Status -> grpc::Status, code and message preserved.
grpc::Status ToGrpcStatus(const absl::Status& status);

// grpc::Status -> absl::Status, code and message preserved; `context` (e.g. "Attribute at
// 127.0.0.1:5000") is prefixed to the message when non-empty.
[[nodiscard]] absl::Status FromGrpcStatus(const grpc::Status& status, const std::string& context = "");

}  // namespace tda
