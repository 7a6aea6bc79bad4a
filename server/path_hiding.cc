#include "server/path_hiding.h"

#include <filesystem>
#include <nlohmann/json.hpp>

namespace tda {

namespace {

bool SeesPaths(Role role) { return RoleAtLeast(role, Role::kOperator); }

// Replaces every string holding a '/' in `value` (recursively) by its last component.
void HideJsonPaths(Role role, nlohmann::json& value) {
  if (value.is_string()) {
    const std::string text = value.get<std::string>();
    if (text.find('/') != std::string::npos) value = VisiblePath(role, text);
  } else if (value.is_structured()) {
    for (nlohmann::json& element : value) HideJsonPaths(role, element);
  }
}

}  // namespace

std::string VisiblePath(Role role, const std::string& path) {
  if (SeesPaths(role) || path.empty()) return path;
  std::filesystem::path p(path);
  if (!p.has_filename()) p = p.parent_path();  // "a/b/" -> "a/b"
  return p.filename().string();
}

void HidePaths(Role role, v1::DescribeIndexResponse* response) {
  if (SeesPaths(role)) return;
  response->set_data_dir(VisiblePath(role, response->data_dir()));
}

void HidePaths(Role role, v1::Job* job) {
  if (SeesPaths(role)) return;
  job->set_result_path(VisiblePath(role, job->result_path()));
  nlohmann::json spec =
      nlohmann::json::parse(job->spec_json(), nullptr, /*allow_exceptions=*/false);
  if (spec.is_discarded()) {
    job->clear_spec_json();  // not JSON: nothing safe to show
    return;
  }
  HideJsonPaths(role, spec);
  job->set_spec_json(spec.dump());
}

}  // namespace tda
