// Joining the ranks of a data-parallel job the way PyTorch programs do: torchrun (or a
// Kubernetes Indexed Job) sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; rank 0
// hosts a c10d TCPStore at MASTER_ADDR:MASTER_PORT (under torchrun its agent hosts it,
// TORCHELASTIC_USE_AGENT_STORE=True), and the ranks form a c10d Gloo process group through it.
// Gloo's network interface is GLOO_SOCKET_IFNAME when set, else the host name's address.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "distributed/collective.h"

namespace tda {

struct WorldEnvironment {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  std::string master_addr;
  int master_port = 0;
  bool agent_store = false;   // torchrun's agent hosts the store; every rank is a client
  int restart_count = 0;      // TORCHELASTIC_RESTART_COUNT: keys of earlier attempts differ
  std::string socket_ifname;  // GLOO_SOCKET_IFNAME
};

// nullopt when WORLD_SIZE is unset (a single-process run). kInvalidArgument naming the
// variable when one is missing or malformed (RANK outside [0, WORLD_SIZE), a port outside
// 1..65535).
[[nodiscard]] absl::StatusOr<std::optional<WorldEnvironment>> ReadWorldEnvironment();

// Joins the group: kUnavailable naming MASTER_ADDR:MASTER_PORT when the store or a peer is not
// reached within `timeout_seconds`, which also bounds every later operation's wait.
[[nodiscard]] absl::StatusOr<std::unique_ptr<Collective>> JoinWorld(const WorldEnvironment& env,
                                                                    double timeout_seconds);

}  // namespace tda
