// What of the server's file system a caller may see. Readers see names only: the last
// component of each server-side path (an index directory "/srv/tda/indexes/fmnist" shows as
// "fmnist"); operators and admins, who submit jobs with paths, see the full paths. Applied by
// the service adapters to DescribeIndex (data_dir) and to jobs (result_path and every string
// of spec_json that contains a '/'), through VisiblePath. Thread-safe (pure functions).
#pragma once

#include <string>

#include "auth/role.h"
#include "tda/v1/attribution.pb.h"
#include "tda/v1/jobs.pb.h"

namespace tda {

// `path` for operators and admins; its last component for readers.
std::string VisiblePath(Role role, const std::string& path);

void HidePaths(Role role, v1::DescribeIndexResponse* response);
void HidePaths(Role role, v1::Job* job);

}  // namespace tda
