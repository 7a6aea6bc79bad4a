// tda index verify: full checksum verification of a gradient index, file by file.
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/commands.h"
#include "common/flags.h"
#include "client/json_string.h"
#include "client/progress_bar.h"
#include "index/gradient_index.h"

namespace tda {
namespace {

std::string StatusText(const absl::Status& status) {
  return absl::StrCat(absl::StatusCodeToString(status.code()), ": ", status.message());
}

}  // namespace

int RunIndexVerify(const Args& args) {
  FlagParser flags(
      "tda index verify", "--index DIR [--json]",
      "Checks every file of a gradient index against the sizes and XXH3 checksums in its\n"
      "manifest, and that the sample table parses. Prints one line per file (OK or the exact\n"
      "error) and exits 1 if anything is wrong, 0 if the index is intact.");
  flags.AddRequiredString("index", "DIR", "index directory written by 'tda index build'");
  flags.AddBool("json", "print {\"index\", \"ok\", \"error\", \"files\": [...]} as JSON");
  if (std::optional<int> exit = flags.ParseOrExit(args)) return *exit;
  const std::string dir = flags.GetString("index");
  const bool json = flags.GetBool("json");

  std::vector<FileCheck> checks;
  absl::Status status;
  {
    ProgressBar bar;
    status = VerifyIndex(
        dir, [&](const FileCheck& check) { checks.push_back(check); }, bar.Callback());
  }
  if (json) {
    std::vector<std::string> files;
    for (const FileCheck& c : checks) {
      files.push_back(absl::StrCat("{\"file\": ", JsonString(c.file), ", \"bytes\": ", c.bytes,
                                   ", \"ok\": ", c.status.ok() ? "true" : "false",
                                   c.status.ok() ? "" : ", \"error\": ",
                                   c.status.ok() ? "" : JsonString(StatusText(c.status)), "}"));
    }
    std::cout << "{\"index\": " << JsonString(dir)
              << ", \"ok\": " << (status.ok() ? "true" : "false")
              << ", \"error\": " << (status.ok() ? "null" : JsonString(StatusText(status)))
              << ", \"files\": [" << absl::StrJoin(files, ", ") << "]}\n";
    return status.ok() ? 0 : 1;
  }
  for (const FileCheck& c : checks) {
    if (c.status.ok()) {
      std::cout << absl::StrFormat("OK     %-28s %d bytes\n", c.file, c.bytes);
    } else {
      std::cout << absl::StrFormat("FAILED %-28s %s\n", c.file, StatusText(c.status));
    }
  }
  if (!status.ok()) return RuntimeError(status);
  std::cout << absl::StrFormat("index %s is intact: %d files verified\n", dir, checks.size());
  return 0;
}

}  // namespace tda
