// The deadline and client cancellation of a server call, as the engine's Cancellation
// (common/cancellation.h). Header-only; the context must outlive the Cancellation.
#pragma once

#include <grpcpp/server_context.h>

#include <chrono>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/cancellation.h"

namespace tda {

inline Cancellation CallCancellation(grpc::ServerContext* context) {
  const std::chrono::system_clock::time_point deadline = context->deadline();
  return Cancellation(deadline == std::chrono::system_clock::time_point::max()
                          ? absl::InfiniteFuture()
                          : absl::FromChrono(deadline),
                      [context] { return context->IsCancelled(); });
}

}  // namespace tda
