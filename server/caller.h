// Who is calling: the name of the bearer token that authenticated a call, as the auth layer
// (server/auth*) records it in the call's AuthContext under kCallerProperty. Calls on a server
// without authentication are "anonymous". Per-caller limits, job ownership and the call log key
// on this name. Header-only; thread-safe.
#pragma once

#include <grpcpp/server_context.h>

#include <string>

namespace tda {

inline constexpr char kCallerProperty[] = "tda.token_name";
inline constexpr char kAnonymousCaller[] = "anonymous";

inline std::string CallerName(const grpc::ServerContextBase& context) {
  const std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth != nullptr) {
    for (const grpc::string_ref& value : auth->FindPropertyValues(kCallerProperty)) {
      return std::string(value.data(), value.size());
    }
  }
  return kAnonymousCaller;
}

}  // namespace tda
