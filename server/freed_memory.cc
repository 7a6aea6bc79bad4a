#include "server/freed_memory.h"

#include <malloc.h>

#include <condition_variable>
#include <mutex>
#include <thread>

namespace tda {
namespace {

// How long after a large call the trim runs: by then gRPC has sent the reply and freed the
// request and response messages of the call.
constexpr auto kTrimDelay = std::chrono::milliseconds(200);

class Trimmer {
 public:
  Trimmer() { std::thread([this] { Run(); }).detach(); }
  void Schedule() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      pending_ = true;
    }
    wake_.notify_one();
  }

 private:
  void Run() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (true) {
      wake_.wait(lock, [this] { return pending_; });
      // Calls that end during the delay are covered by this trim.
      lock.unlock();
      std::this_thread::sleep_for(kTrimDelay);
      lock.lock();
      pending_ = false;
      lock.unlock();
      malloc_trim(0);
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  bool pending_ = false;
};

}  // namespace

void ReleaseArenaTopsOnFree() { mallopt(M_TRIM_THRESHOLD, kServerTrimThresholdBytes); }

void ReturnFreedMemoryAfter(size_t call_bytes) {
  if (call_bytes < kLargeCallBytes) return;
  // Never destroyed: its thread runs for the life of the process.
  static Trimmer* const trimmer = new Trimmer();
  trimmer->Schedule();
}

}  // namespace tda
