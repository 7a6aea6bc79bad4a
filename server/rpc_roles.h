// The one table of which role each RPC needs (server/rpc_roles.cc), keyed by the gRPC full
// method path ("/tda.v1.JobService/SubmitJob", as it arrives in the ":path" header). A method
// missing from the table is denied to everyone (fail closed); tests/integration/
// auth_rules_test.cc checks that every method of every service tda-server registers is in it.
// Health checking and server reflection are public: reachable without a token.
// Thread-safe (a constant table).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "auth/role.h"

namespace tda {

// The role needed to call `method_path`; nullopt for a method not in the table.
std::optional<Role> RequiredRole(absl::string_view method_path);
// grpc.health.v1.Health/* and grpc.reflection.v1alpha.ServerReflection/*.
bool IsPublicMethod(absl::string_view method_path);
// Every method path in the table, in table order (for tests and documentation).
std::vector<std::string> MethodsInRoleTable();

}  // namespace tda
