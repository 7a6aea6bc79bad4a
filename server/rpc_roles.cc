#include "server/rpc_roles.h"

namespace tda {

namespace {

struct MethodRole {
  const char* path;
  Role role;
};

// Readers query and watch; operators run jobs; admins administer the server.
constexpr MethodRole kRoleTable[] = {
    {"/tda.v1.AttributionService/Attribute", Role::kReader},
    {"/tda.v1.AttributionService/DescribeIndex", Role::kReader},
    {"/tda.v1.AttributionService/ListIndexes", Role::kReader},
    {"/tda.v1.AttributionService/GetSample", Role::kReader},
    {"/tda.v1.AttributionService/SelfInfluence", Role::kReader},
    // A router's fan-out (server/shard_service.h): the vectors reveal no more than Attribute.
    {"/tda.v1.ShardService/ScoreShard", Role::kReader},
    {"/tda.v1.JobService/GetJob", Role::kReader},  // readers: own and scheduled jobs only
    {"/tda.v1.JobService/ListJobs", Role::kReader},
    {"/tda.v1.JobService/WatchJob", Role::kReader},
    {"/tda.v1.JobService/SubmitJob", Role::kOperator},
    {"/tda.v1.JobService/CancelJob", Role::kOperator},  // operators: own jobs only
    {"/tda.v1.JobService/CreateSchedule", Role::kOperator},
    {"/tda.v1.JobService/ListSchedules", Role::kOperator},
    {"/tda.v1.JobService/DeleteSchedule", Role::kOperator},
    {"/tda.v1.AdminService/ReloadTokens", Role::kAdmin},
    {"/tda.v1.AdminService/ReloadIndexes", Role::kAdmin},
    {"/tda.v1.AdminService/UnloadIndex", Role::kAdmin},
};

constexpr const char* kPublicServices[] = {
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
};

}  // namespace

std::optional<Role> RequiredRole(absl::string_view method_path) {
  for (const MethodRole& entry : kRoleTable) {
    if (method_path == entry.path) return entry.role;
  }
  return std::nullopt;
}

bool IsPublicMethod(absl::string_view method_path) {
  for (absl::string_view prefix : kPublicServices) {
    if (method_path.substr(0, prefix.size()) == prefix &&
        method_path.find('/', prefix.size()) == absl::string_view::npos &&
        method_path.size() > prefix.size()) {
      return true;
    }
  }
  return false;
}

std::vector<std::string> MethodsInRoleTable() {
  std::vector<std::string> paths;
  for (const MethodRole& entry : kRoleTable) paths.push_back(entry.path);
  return paths;
}

}  // namespace tda
