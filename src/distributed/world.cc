// The only file that includes c10d (LibTorch's distributed headers; Gloo's from libgloo-dev).
#include "distributed/world.h"

#include <chrono>
#include <cstdlib>
#include <exception>
#include <utility>
#include <vector>

#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace tda {
namespace {

absl::StatusOr<int> IntVariable(const char* name, int min, int max) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') {
    return absl::InvalidArgumentError(
        absl::StrCat("WORLD_SIZE is set but ", name,
                     " is not: a distributed run needs RANK, WORLD_SIZE, MASTER_ADDR and "
                     "MASTER_PORT (torchrun sets them)"));
  }
  int value = 0;
  if (!absl::SimpleAtoi(text, &value) || value < min || value > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, "='", text, "' must be an integer in [", min, ", ", max, "]"));
  }
  return value;
}

std::string Variable(const char* name) {
  const char* text = std::getenv(name);
  return text == nullptr ? "" : text;
}

class GlooCollective : public Collective {
 public:
  GlooCollective(int rank, int size, c10::intrusive_ptr<c10d::ProcessGroupGloo> group)
      : rank_(rank), size_(size), group_(std::move(group)) {}

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  absl::Status AllReduceSum(double* values, int64_t count) override {
    if (count == 0) return absl::OkStatus();
    return Run("all-reduce", [&] {
      std::vector<at::Tensor> tensors = {at::from_blob(values, {count}, at::kDouble)};
      group_->allreduce(tensors)->wait();
      // Ring all-reduce leaves the same sums on every rank; rank 0's copy makes it certain.
      group_->broadcast(tensors)->wait();
    });
  }

  absl::StatusOr<std::vector<std::string>> AllGather(const std::string& mine) override {
    std::vector<std::string> all(static_cast<size_t>(size_));
    absl::Status status = Run("all-gather", [&] {
      // Lengths first, then every rank's bytes padded to the longest.
      std::vector<std::vector<at::Tensor>> lengths(1);
      for (int r = 0; r < size_; ++r) lengths[0].push_back(at::zeros({1}, at::kLong));
      std::vector<at::Tensor> my_length = {
          at::full({1}, static_cast<int64_t>(mine.size()), at::kLong)};
      group_->allgather(lengths, my_length)->wait();
      int64_t longest = 1;
      for (const at::Tensor& t : lengths[0]) longest = std::max(longest, t.item<int64_t>());
      std::vector<at::Tensor> my_bytes = {at::zeros({longest}, at::kByte)};
      std::copy(mine.begin(), mine.end(), my_bytes[0].data_ptr<uint8_t>());
      std::vector<std::vector<at::Tensor>> bytes(1);
      for (int r = 0; r < size_; ++r) bytes[0].push_back(at::zeros({longest}, at::kByte));
      group_->allgather(bytes, my_bytes)->wait();
      for (int r = 0; r < size_; ++r) {
        const char* data = reinterpret_cast<const char*>(bytes[0][r].data_ptr<uint8_t>());
        all[r].assign(data, static_cast<size_t>(lengths[0][r].item<int64_t>()));
      }
    });
    if (!status.ok()) return status;
    return all;
  }

 private:
  template <typename Fn>
  absl::Status Run(const char* operation, Fn&& fn) {
    try {
      fn();
      return absl::OkStatus();
    } catch (const std::exception& e) {
      return absl::UnavailableError(
          absl::StrCat("rank ", rank_, " of ", size_, ": ", operation,
                       " failed (another rank failed or left?): ", e.what()));
    }
  }

  int rank_;
  int size_;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group_;
};

}  // namespace

absl::StatusOr<std::optional<WorldEnvironment>> ReadWorldEnvironment() {
  if (Variable("WORLD_SIZE").empty()) return std::optional<WorldEnvironment>();
  WorldEnvironment env;
  absl::StatusOr<int> size = IntVariable("WORLD_SIZE", 1, 1 << 20);
  if (!size.ok()) return size.status();
  env.world_size = *size;
  absl::StatusOr<int> rank = IntVariable("RANK", 0, env.world_size - 1);
  if (!rank.ok()) return rank.status();
  env.rank = *rank;
  if (!Variable("LOCAL_RANK").empty()) {
    absl::StatusOr<int> local = IntVariable("LOCAL_RANK", 0, 1 << 20);
    if (!local.ok()) return local.status();
    env.local_rank = *local;
  }
  env.master_addr = Variable("MASTER_ADDR");
  if (env.master_addr.empty()) {
    return absl::InvalidArgumentError(
        "WORLD_SIZE is set but MASTER_ADDR is not: set it to the host of rank 0");
  }
  absl::StatusOr<int> port = IntVariable("MASTER_PORT", 1, 65535);
  if (!port.ok()) return port.status();
  env.master_port = *port;
  env.agent_store = Variable("TORCHELASTIC_USE_AGENT_STORE") == "True";
  if (!Variable("TORCHELASTIC_RESTART_COUNT").empty()) {
    absl::StatusOr<int> restarts = IntVariable("TORCHELASTIC_RESTART_COUNT", 0, 1 << 20);
    if (!restarts.ok()) return restarts.status();
    env.restart_count = *restarts;
  }
  env.socket_ifname = Variable("GLOO_SOCKET_IFNAME");
  return std::optional<WorldEnvironment>(env);
}

absl::StatusOr<std::unique_ptr<Collective>> JoinWorld(const WorldEnvironment& env,
                                                      double timeout_seconds) {
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_seconds * 1000));
  const std::string where = absl::StrCat(env.master_addr, ":", env.master_port);
  try {
    c10d::TCPStoreOptions store_options;
    store_options.port = static_cast<uint16_t>(env.master_port);
    store_options.isServer = env.rank == 0 && !env.agent_store;
    store_options.numWorkers = env.world_size;
    store_options.waitWorkers = false;
    store_options.timeout = timeout;
    auto store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, store_options);
    // One namespace per attempt: a restarted job never reads an earlier attempt's keys.
    auto prefixed =
        c10::make_intrusive<c10d::PrefixStore>(absl::StrCat("tda/", env.restart_count), store);
    auto options = c10d::ProcessGroupGloo::Options::create();
    options->timeout = timeout;
    options->devices.push_back(
        env.socket_ifname.empty()
            ? c10d::ProcessGroupGloo::createDefaultDevice()
            : c10d::ProcessGroupGloo::createDeviceForInterface(env.socket_ifname));
    auto group =
        c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, env.rank, env.world_size, options);
    return std::unique_ptr<Collective>(
        std::make_unique<GlooCollective>(env.rank, env.world_size, std::move(group)));
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("rank ", env.rank, " of ", env.world_size,
                                               " could not join the group at ", where, " within ",
                                               timeout_seconds, " s: ", e.what()));
  }
}

}  // namespace tda
