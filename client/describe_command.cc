// tda describe: what an index (served or on disk) holds; --list: every index a server knows.
#include <iostream>

#include "absl/strings/str_format.h"
#include "client/attribution_backend.h"
#include "client/channel.h"
#include "client/commands.h"
#include "client/remote_attributor.h"
#include "client/result_format.h"
#include "common/flags.h"

namespace tda {
namespace {

// One line per version: name, version, state, and the failure reason (or the rows served).
std::string FormatIndexList(const v1::ListIndexesResponse& list) {
  std::string text = absl::StrFormat("%-24s  %8s  %-9s  %s\n", "name", "version", "state", "");
  for (const v1::IndexVersionStatus& entry : list.indexes()) {
    const std::string detail = entry.has_description() && entry.message().empty()
                                   ? absl::StrFormat("%d rows", entry.description().rows())
                                   : entry.message();
    text += absl::StrFormat("%-24s  %8d  %-9s  %s\n", entry.name(), entry.version(),
                            v1::IndexVersionStatus::State_Name(entry.state()), detail);
  }
  return text;
}

int RunList(const ConnectionOptions& server, bool json) {
  absl::StatusOr<std::unique_ptr<RemoteAttributor>> remote =
      RemoteAttributor::Connect(server, RemoteAttributor::Options{});
  if (!remote.ok()) return RuntimeError(remote.status());
  absl::StatusOr<v1::ListIndexesResponse> list = (*remote)->ListIndexes();
  if (!list.ok()) return RuntimeError(list.status());
  std::cout << (json ? MessageToJson(*list) : FormatIndexList(*list));
  return 0;
}

}  // namespace

int RunDescribe(const Args& args) {
  FlagParser flags("tda describe",
                   "(--server ADDR [--index-name NAME | --list] | --index DIR)"
                   " [--json]",
                   "Describes a gradient index: rows, projection, model, curvature factors and\n"
                   "class names; from a running tda-server or an index directory. With --list,\n"
                   "every index the server knows, each version's state (SERVING, LOADING,\n"
                   "FAILED with the reason, UNLOADED).");
  AddConnectionFlags(flags, /*server_required=*/false,
                     "address of a running tda-server (host:port)");
  flags.AddString("index", "DIR", "", "index directory (offline, no server)");
  flags.AddString("index-name", "NAME", "",
                  "with --server: the served index to describe; optional when the server "
                  "serves one");
  flags.AddBool("list", "with --server: list the served indexes and their versions");
  flags.AddBool("json", "print the DescribeIndexResponse (ListIndexesResponse) as JSON");
  if (std::optional<int> exit = flags.ParseOrExit(args)) return *exit;
  if (flags.GetString("server").empty() == flags.GetString("index").empty()) {
    return flags.UsageError("give exactly one of --server ADDR or --index DIR");
  }
  if ((flags.GetBool("list") || flags.IsSet("index-name")) && flags.GetString("server").empty()) {
    return flags.UsageError("--list and --index-name need --server");
  }
  absl::StatusOr<ConnectionOptions> server = ConnectionFromFlags(flags);
  if (!server.ok()) return flags.UsageError(std::string(server.status().message()));
  if (flags.GetBool("list")) return RunList(*server, flags.GetBool("json"));
  absl::StatusOr<std::unique_ptr<AttributionBackend>> backend =
      OpenBackend(*server, flags.GetString("index"), flags.GetString("index-name"));
  if (!backend.ok()) return RuntimeError(backend.status());
  absl::StatusOr<v1::DescribeIndexResponse> description = (*backend)->Describe();
  if (!description.ok()) return RuntimeError(description.status());
  std::cout << (flags.GetBool("json") ? FormatDescriptionJson(*description)
                                      : FormatDescriptionText(*description));
  return 0;
}

}  // namespace tda
