// tda health: the standard gRPC health check of a tda-server, for probes (a Kubernetes exec
// probe, deploy/k8s) and scripts. Kubernetes' own gRPC probe speaks plaintext only, so a
// server that serves TLS is probed with this command instead; health needs no token.
// Exit 0 when SERVING, 1 otherwise (NOT_SERVING, unknown service, no answer), 2 on bad flags.
#include <iostream>

#include "client/channel.h"
#include "client/commands.h"
#include "client/remote_attributor.h"
#include "common/flags.h"

namespace tda {

int RunHealth(const Args& args) {
  FlagParser flags("tda health", "--server ADDR [--service NAME] [--timeout SECONDS]",
                   "Asks a tda-server's grpc.health.v1.Health service whether it serves: the\n"
                   "whole server (default) or one service, e.g. tda.v1.AttributionService\n"
                   "(NOT_SERVING while an index is loading or failed verification). Prints the\n"
                   "status; exit 0 when SERVING, 1 otherwise.");
  AddConnectionFlags(flags, /*server_required=*/true, "address of the tda-server (host:port)");
  flags.AddString("service", "NAME", "", "service to check (default: the whole server)");
  flags.AddDouble("timeout", "SECONDS", 5, "give up after this long (connect and call)");
  if (std::optional<int> exit = flags.ParseOrExit(args)) return *exit;
  absl::StatusOr<ConnectionOptions> connection = ConnectionFromFlags(flags);
  if (!connection.ok()) return flags.UsageError(std::string(connection.status().message()));
  const double timeout = flags.GetDouble("timeout");
  if (!(timeout > 0)) return flags.UsageError("--timeout must be > 0");

  RemoteAttributor::Options options;
  options.connect_timeout_seconds = timeout;
  options.call_timeout_seconds = timeout;
  absl::StatusOr<std::unique_ptr<RemoteAttributor>> remote =
      RemoteAttributor::Connect(*connection, options);
  if (!remote.ok()) return RuntimeError(remote.status());
  absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus> status =
      (*remote)->CheckHealth(flags.GetString("service"));
  if (!status.ok()) return RuntimeError(status.status());
  std::cout << grpc::health::v1::HealthCheckResponse::ServingStatus_Name(*status) << "\n";
  return *status == grpc::health::v1::HealthCheckResponse::SERVING ? 0 : 1;
}

}  // namespace tda
