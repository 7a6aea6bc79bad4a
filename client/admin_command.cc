// tda admin: the team server's tokens and administration.
//
//   tda admin token create NAME --role R --file FILE   prints a new token once, appends its hash
//   tda admin token revoke NAME --file FILE            removes it (then SIGHUP the server, or
//   tda admin token list --file FILE                   'tda admin reload')
//   tda admin reload --server ADDR [connection flags]  the server re-reads its token file (if
//                                                      it has one) and rescans its index
//                                                      repository, printing each index's state
//                                                      (and serves the names unloaded before)
//   tda admin unload --server ADDR NAME                the server stops serving NAME until
//                                                      the next 'tda admin reload'
//
// The token file format and its atomic edits are src/auth/token_file.h; the file holds hashes
// only, so the printed token is the only copy of the secret.
#include <grpcpp/grpcpp.h>

#include <iostream>

#include "absl/strings/str_format.h"
#include "api/status_conversion.h"
#include "auth/token_file.h"
#include "client/channel.h"
#include "client/commands.h"
#include "client/result_format.h"
#include "common/flags.h"
#include "tda/v1/admin.grpc.pb.h"

namespace tda {
namespace {

constexpr char kAdminUsage[] =
    "Usage: tda admin token create NAME --role reader|operator|admin --file FILE\n"
    "       tda admin token revoke NAME --file FILE\n"
    "       tda admin token list --file FILE\n"
    "       tda admin reload --server ADDR [--tls-ca FILE] [--token-file FILE] [--json]\n"
    "       tda admin unload --server ADDR NAME [--tls-ca FILE] [--token-file FILE] [--json]\n"
    "\n"
    "Bearer tokens of a tda-server started with --auth-tokens FILE. The file holds each\n"
    "token's name, role and SHA-256, never the token: 'create' prints the token once. The\n"
    "server re-reads the file on SIGHUP or 'tda admin reload' (role admin).\n"
    "'unload' stops serving an index of a --repository (calls in flight finish); it stays\n"
    "UNLOADED, and the poller leaves it alone, until 'tda admin reload' loads it again.\n";

int RunTokenCommand(const std::string& command, const Args& args) {
  const bool takes_name = command == "create" || command == "revoke";
  std::vector<std::string> rest = args;
  std::string name;
  if (takes_name) {
    if (rest.empty() || rest[0].rfind("-", 0) == 0) {
      std::cerr << "tda: error: give the token name: tda admin token " << command << " NAME\n";
      return 2;
    }
    name = rest[0];
    rest.erase(rest.begin());
  }
  FlagParser flags("tda admin token " + command,
                   takes_name
                       ? "NAME --file FILE" + std::string(command == "create" ? " --role R" : "")
                       : "--file FILE",
                   command == "create"   ? "Creates a token, prints it once and appends its hash."
                   : command == "revoke" ? "Removes a token from the file."
                                         : "Lists the tokens' names and roles.");
  flags.AddRequiredString("file", "FILE", "the token file of tda-server --auth-tokens");
  if (command == "create") {
    flags.AddRequiredString("role", "R", "reader, operator or admin");
  }
  if (std::optional<int> exit = flags.ParseOrExit(rest)) return *exit;
  const std::string file = flags.GetString("file");
  if (command == "create") {
    absl::StatusOr<Role> role = ParseRole(flags.GetString("role"));
    if (!role.ok()) return flags.UsageError(std::string(role.status().message()));
    absl::StatusOr<std::string> token = CreateToken(file, name, *role);
    if (!token.ok()) return RuntimeError(token.status());
    std::cout << *token << "\n";
    std::cerr << "tda: token '" << name << "' (" << RoleName(*role) << ") added to " << file
              << "; it is shown only this once. Reload the server: kill -HUP <pid> or "
                 "'tda admin reload'.\n";
    return 0;
  }
  if (command == "revoke") {
    if (absl::Status s = RevokeToken(file, name); !s.ok()) return RuntimeError(s);
    std::cerr << "tda: token '" << name << "' removed from " << file
              << "; reload the server for it to take effect.\n";
    return 0;
  }
  absl::StatusOr<std::vector<TokenEntry>> entries = ReadTokenFile(file);
  if (!entries.ok()) return RuntimeError(entries.status());
  std::cout << absl::StrFormat("%-24s  %s\n", "name", "role");
  for (const TokenEntry& e : *entries) {
    std::cout << absl::StrFormat("%-24s  %s\n", e.name, RoleName(e.role));
  }
  return 0;
}

// Each index version's state, one line each, or the ListIndexesResponse as JSON.
void PrintIndexes(const v1::ListIndexesResponse& indexes, bool json) {
  if (json) {
    std::cout << MessageToJson(indexes);
    return;
  }
  for (const v1::IndexVersionStatus& entry : indexes.indexes()) {
    std::cout << absl::StrFormat("index %s version %d: %s%s\n", entry.name(), entry.version(),
                                 v1::IndexVersionStatus::State_Name(entry.state()),
                                 entry.message().empty() ? "" : " (" + entry.message() + ")");
  }
}

// The admin stub of --server and the connection flags; null (and *exit set) on an error.
std::unique_ptr<v1::AdminService::Stub> ConnectAdmin(FlagParser& flags,
                                                     ConnectionOptions* connection, int* exit) {
  absl::StatusOr<ConnectionOptions> options = ConnectionFromFlags(flags);
  if (!options.ok()) {
    *exit = flags.UsageError(std::string(options.status().message()));
    return nullptr;
  }
  *connection = *options;
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = ConnectChannel(*connection);
  if (!channel.ok()) {
    *exit = RuntimeError(channel.status());
    return nullptr;
  }
  return v1::AdminService::NewStub(*channel);
}

int RunUnload(const Args& args) {
  // NAME may stand anywhere among the flags: the one word that is not a flag's value (every
  // flag here takes a value except --json and --help).
  std::vector<std::string> rest;
  std::vector<std::string> names;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& word = args[i];
    if (word.rfind("-", 0) != 0) {
      names.push_back(word);
      continue;
    }
    rest.push_back(word);
    const bool takes_value =
        word != "--json" && word != "--help" && word != "-h" && word.find('=') == std::string::npos;
    if (takes_value && i + 1 < args.size()) rest.push_back(args[++i]);
  }
  FlagParser flags(
      "tda admin unload", "--server ADDR [connection flags] [--json] NAME",
      "Makes a tda-server stop serving the index NAME of its --repository: new\n"
      "calls for it answer NOT_FOUND, calls in flight finish. It stays UNLOADED\n"
      "until 'tda admin reload' (or SIGHUP) loads its newest version again; the\n"
      "poller does not bring it back. Prints each index version's state (role admin).");
  AddConnectionFlags(flags, /*server_required=*/true, "address of the tda-server");
  flags.AddBool("json", "print the ListIndexesResponse as JSON");
  if (std::optional<int> exit = flags.ParseOrExit(rest)) return *exit;
  if (names.size() != 1) {
    return flags.UsageError(names.empty()
                                ? "give the index to unload: tda admin unload --server ADDR NAME"
                                : "give one index name (unload them one at a time)");
  }
  const std::string& name = names[0];
  ConnectionOptions connection;
  int exit = 0;
  std::unique_ptr<v1::AdminService::Stub> admin = ConnectAdmin(flags, &connection, &exit);
  if (admin == nullptr) return exit;
  grpc::ClientContext context;
  v1::UnloadIndexRequest request;
  request.set_index(name);
  v1::ListIndexesResponse indexes;
  const grpc::Status status = admin->UnloadIndex(&context, request, &indexes);
  if (!status.ok()) {
    return RuntimeError(FromGrpcStatus(status, "UnloadIndex at " + connection.address));
  }
  if (!flags.GetBool("json")) {
    std::cout << "tda-server at " << connection.address << " no longer serves '" << name
              << "'; 'tda admin reload' serves it again\n";
  }
  PrintIndexes(indexes, flags.GetBool("json"));
  return 0;
}

int RunReload(const Args& args) {
  FlagParser flags(
      "tda admin reload", "--server ADDR [connection flags]",
      "Makes a tda-server re-read its --auth-tokens file (when it has one) and rescan\n"
      "its --repository, waiting for new index versions to load or fail; prints each\n"
      "index version's state (role admin).");
  AddConnectionFlags(flags, /*server_required=*/true, "address of the tda-server");
  flags.AddBool("json", "print the ListIndexesResponse as JSON (the token count goes to stderr)");
  if (std::optional<int> exit = flags.ParseOrExit(args)) return *exit;
  const bool json = flags.GetBool("json");
  ConnectionOptions connection;
  int exit = 0;
  std::unique_ptr<v1::AdminService::Stub> admin = ConnectAdmin(flags, &connection, &exit);
  if (admin == nullptr) return exit;
  grpc::ClientContext tokens_context;
  v1::ReloadTokensResponse tokens;
  const grpc::Status tokens_status = admin->ReloadTokens(&tokens_context, {}, &tokens);
  if (tokens_status.ok()) {
    (json ? std::cerr : std::cout) << "tda-server at " << connection.address << " now accepts "
                                   << tokens.tokens() << " token(s)\n";
  } else if (tokens_status.error_code() != grpc::StatusCode::FAILED_PRECONDITION) {
    return RuntimeError(FromGrpcStatus(tokens_status, "ReloadTokens at " + connection.address));
  }
  grpc::ClientContext indexes_context;
  v1::ListIndexesResponse indexes;
  const grpc::Status indexes_status = admin->ReloadIndexes(&indexes_context, {}, &indexes);
  if (!indexes_status.ok()) {
    return RuntimeError(FromGrpcStatus(indexes_status, "ReloadIndexes at " + connection.address));
  }
  PrintIndexes(indexes, json);
  return 0;
}

}  // namespace

int RunAdmin(const Args& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    (args.empty() ? std::cerr : std::cout) << kAdminUsage;
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "reload") return RunReload({args.begin() + 1, args.end()});
  if (args[0] == "unload") return RunUnload({args.begin() + 1, args.end()});
  if (args[0] == "token" && args.size() >= 2 &&
      (args[1] == "create" || args[1] == "revoke" || args[1] == "list")) {
    return RunTokenCommand(args[1], {args.begin() + 2, args.end()});
  }
  std::cerr << "tda: error: unknown admin command\n\n" << kAdminUsage;
  return 2;
}

}  // namespace tda
