// The role of the caller of a call (auth/role.h), as the token authenticator
// (server/auth_token_processor.h) records it in the call's AuthContext under kRoleProperty
// beside the token name (server/caller.h). Without --auth-tokens there is no authenticator and
// every caller is "anonymous" with role admin: with authentication on, the authenticator
// rejects every call to a tda.v1 service that carries no valid token, so the property is
// always there. Header-only; thread-safe.
#pragma once

#include <grpcpp/server_context.h>

#include <string>

#include "auth/role.h"

namespace tda {

inline constexpr char kRoleProperty[] = "tda.token_role";

inline Role CallerRole(const grpc::ServerContext& context) {
  const std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth != nullptr) {
    for (const grpc::string_ref& value : auth->FindPropertyValues(kRoleProperty)) {
      absl::StatusOr<Role> role = ParseRole(absl::string_view(value.data(), value.size()));
      return role.ok() ? *role : Role::kReader;  // unparseable: least privilege
    }
  }
  return Role::kAdmin;
}

}  // namespace tda
