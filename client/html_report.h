// A self-contained HTML page (no external files: images are inline base64 PNGs, scaled up with
// CSS `image-rendering: pixelated`) showing each query image beside its top proponents and
// opponents with their ids, labels and scores. Thread-safe (pure function).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "attribution/attributor.h"

namespace tda {

struct ReportInput {
  std::string title;
  std::vector<QueryResult> results;
  // Features by sample id for the queries and every hit; missing ids are drawn as a blank box.
  std::map<std::string, std::vector<float>> features;
  std::vector<std::string> class_names;
  std::string method;  // e.g. "ekfac"
};

std::string RenderHtmlReport(const ReportInput& input);

}  // namespace tda
