// The roles of tda-server's callers, from least to most privileged: a role may do everything
// the roles below it may. reader: queries and its own/scheduled jobs; operator: also submits,
// cancels and schedules jobs; admin: also administers the server (token reload). The RPC ->
// role table is server/rpc_roles.cc. Thread-safe (pure functions).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tda {

enum class Role { kReader = 0, kOperator = 1, kAdmin = 2 };

// "reader", "operator", "admin".
const char* RoleName(Role role);
// kInvalidArgument naming the text and the valid roles otherwise.
[[nodiscard]] absl::StatusOr<Role> ParseRole(absl::string_view name);
// Whether `role` may do what `required` may.
inline bool RoleAtLeast(Role role, Role required) {
  return static_cast<int>(role) >= static_cast<int>(required);
}

}  // namespace tda
