// Background verification of a served index: tda-server opens its index checking versions and
// sizes only (so it serves within seconds whatever the index's size), then this verifier hashes
// every file the manifest lists (VerifyIndex) on its own thread. If a file is damaged the
// verifier records the error (naming the file) and calls `on_failure` once; the service then
// answers queries with DATA_LOSS and health says NOT_SERVING.
//
// Thread-safety: all methods may be called from any thread. The destructor waits for the
// verification thread to finish.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"

namespace tda {

class IndexVerifier {
 public:
  enum class State { kVerifying, kVerified, kFailed };

  explicit IndexVerifier(std::string index_dir) : dir_(std::move(index_dir)) {}
  ~IndexVerifier();
  IndexVerifier(const IndexVerifier&) = delete;
  IndexVerifier& operator=(const IndexVerifier&) = delete;

  // Starts the verification thread (once). `on_failure` runs on that thread.
  void Start(std::function<void(const absl::Status&)> on_failure);
  // Blocks until the verification thread has finished (the owner calls it, not the readers).
  void Wait();

  State state() const { return state_.load(); }
  // OK while verifying or verified; the kDataLoss error (naming the file) once failed.
  [[nodiscard]] absl::Status status() const;
  int64_t bytes_checked() const { return bytes_checked_.load(); }
  int64_t bytes_total() const { return bytes_total_.load(); }

 private:
  const std::string dir_;
  std::thread thread_;
  std::atomic<State> state_{State::kVerifying};
  std::atomic<int64_t> bytes_checked_{0}, bytes_total_{0};
  mutable std::mutex mu_;
  absl::Status error_;  // guarded by mu_
};

}  // namespace tda
