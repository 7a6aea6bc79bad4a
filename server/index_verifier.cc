#include "server/index_verifier.h"

#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "index/gradient_index.h"
#include "server/background_priority.h"

namespace tda {

IndexVerifier::~IndexVerifier() { Wait(); }

void IndexVerifier::Wait() {
  if (thread_.joinable()) thread_.join();
}

void IndexVerifier::Start(std::function<void(const absl::Status&)> on_failure) {
  if (thread_.joinable()) return;
  thread_ = std::thread([this, on_failure = std::move(on_failure)] {
    RunThisThreadAtBackgroundPriority();
    absl::Status status =
        VerifyIndex(dir_, {}, [this](std::string_view, int64_t done, int64_t total,
                                     std::string_view) {
          bytes_checked_ = done;
          bytes_total_ = total;
        });
    if (status.ok()) {
      state_ = State::kVerified;
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      error_ = absl::DataLossError(
          absl::StrCat("index ", dir_, " failed verification: ", status.message()));
    }
    state_ = State::kFailed;
    if (on_failure) on_failure(status);
  });
}

absl::Status IndexVerifier::status() const {
  if (state_.load() != State::kFailed) return absl::OkStatus();
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

}  // namespace tda
