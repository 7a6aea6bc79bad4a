// When a computation must stop early: a deadline and/or a caller-supplied "has the caller gone
// away?" check (tda-server passes the gRPC call's IsCancelled; the engine never sees gRPC).
// Long computations poll Check() at natural boundaries -- once per row block of an index scan,
// between the phases of a query -- and return its status when it is not OK, so a stopped query
// gives its compute back within one block.
//
// Check() answers kDeadlineExceeded once the deadline has passed (checked first: a call whose
// deadline passed is also cancelled in gRPC's eyes), else kCancelled once `cancelled()` says
// so, else OK. A default-constructed Cancellation never stops. Thread-safe when `cancelled` is
// (Check may be called from every scan thread at once).
#pragma once

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace tda {

class Cancellation {
 public:
  Cancellation() = default;
  // `cancelled` may be empty (only the deadline then); absl::InfiniteFuture() for no deadline.
  Cancellation(absl::Time deadline, std::function<bool()> cancelled)
      : deadline_(deadline), cancelled_(std::move(cancelled)) {}

  // OK, kDeadlineExceeded or kCancelled; `what` names the work that stops in the message
  // (e.g. "index scan").
  [[nodiscard]] absl::Status Check(const char* what = "query") const;
  absl::Time deadline() const { return deadline_; }
  // True when Check can ever fail (a finite deadline or a cancellation check).
  bool can_stop() const { return deadline_ != absl::InfiniteFuture() || cancelled_ != nullptr; }

 private:
  absl::Time deadline_ = absl::InfiniteFuture();
  std::function<bool()> cancelled_;
};

}  // namespace tda
