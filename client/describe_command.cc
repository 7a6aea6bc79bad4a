// tda describe: what an index (served or on disk) holds.
#include <iostream>

#include "client/attribution_backend.h"
#include "client/channel.h"
#include "client/commands.h"
#include "common/flags.h"
#include "client/result_format.h"

namespace tda {

int RunDescribe(const Args& args) {
  FlagParser flags("tda describe", "(--server ADDR | --index DIR) [--json]",
                   "Describes a gradient index: rows, projection, model, curvature factors and\n"
                   "class names; from a running tda-server or an index directory.");
  AddConnectionFlags(flags, /*server_required=*/false,
                     "address of a running tda-server (host:port)");
  flags.AddString("index", "DIR", "", "index directory (offline, no server)");
  flags.AddBool("json", "print the DescribeIndexResponse as JSON");
  if (std::optional<int> exit = flags.ParseOrExit(args)) return *exit;
  if (flags.GetString("server").empty() == flags.GetString("index").empty()) {
    return flags.UsageError("give exactly one of --server ADDR or --index DIR");
  }
  absl::StatusOr<ConnectionOptions> server = ConnectionFromFlags(flags);
  if (!server.ok()) return flags.UsageError(std::string(server.status().message()));
  absl::StatusOr<std::unique_ptr<AttributionBackend>> backend =
      OpenBackend(*server, flags.GetString("index"));
  if (!backend.ok()) return RuntimeError(backend.status());
  absl::StatusOr<v1::DescribeIndexResponse> description = (*backend)->Describe();
  if (!description.ok()) return RuntimeError(description.status());
  std::cout << (flags.GetBool("json") ? FormatDescriptionJson(*description)
                                      : FormatDescriptionText(*description));
  return 0;
}

}  // namespace tda
