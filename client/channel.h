// The one place where the tda CLI builds its connection to a tda-server: the connection flags
// every server command takes (--server, --tls-ca, --tls-cert, --tls-key, --token,
// --token-file; env TDA_TOKEN), their validation, and the channel with its credentials.
//
// TLS is used when --tls-ca or --tls-cert is given: the server's certificate must chain to
// --tls-ca (the system roots without it) and name the --server host; --tls-cert/--tls-key
// present a client certificate (servers started with --tls-client-ca require one). The token
// goes in every call's metadata as "authorization: Bearer TOKEN" (a client interceptor), on
// plaintext loopback channels too; it is never printed.
//
// Connecting fails fast: a refused connection or a failed TLS handshake is reported at once,
// telling the two apart (a plain TCP probe), instead of retrying until the timeout; only a
// server that does not answer at all takes connect_timeout_seconds.
// Thread-compatible; the channel is thread-safe.
#pragma once

#include <grpcpp/channel.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/flags.h"

namespace tda {

struct ConnectionOptions {
  std::string address;  // HOST:PORT
  std::string tls_ca_file, tls_cert_file, tls_key_file;
  std::string token;  // secret: never log it
  double connect_timeout_seconds = 10;
  int max_message_bytes = 1 << 30;  // largest message sent or received
  bool tls() const { return !tls_ca_file.empty() || !tls_cert_file.empty(); }
};

// Adds the connection flags; --server is required when `server_required`, else defaults to
// "" (the command then works offline, e.g. `tda query --index DIR`).
void AddConnectionFlags(FlagParser& flags, bool server_required, const std::string& server_help);

// The options from parsed flags; only an empty address when --server is not given (token: --token,
// else --token-file's first line, else $TDA_TOKEN). kInvalidArgument for a malformed --server (port
// not a number in 1..65535),
// --tls-cert without --tls-key, both --token and --token-file, an unreadable token file: the
// caller reports it as a usage error (exit 2) before any connection attempt.
[[nodiscard]] absl::StatusOr<ConnectionOptions> ConnectionFromFlags(const FlagParser& flags);

// kInvalidArgument unless `address` is HOST:PORT with a port in 1..65535 ([v6]:PORT allowed;
// "unix:..." targets pass).
[[nodiscard]] absl::Status ValidateServerAddress(const std::string& address);

// A channel to options.address with its credentials, connecting lazily on its first call (for
// a server's own calls to others, e.g. a router's to its shards, which may start later).
// kInvalidArgument for an address or certificate file that is not usable.
[[nodiscard]] absl::StatusOr<std::shared_ptr<grpc::Channel>> CreateChannel(
    const ConnectionOptions& options);

// A channel to options.address, ready to use. kUnavailable naming the address and the cause
// (connection refused / handshake failed / no answer within the timeout); kInvalidArgument
// for an address or certificate file that is not usable.
[[nodiscard]] absl::StatusOr<std::shared_ptr<grpc::Channel>> ConnectChannel(
    const ConnectionOptions& options);

}  // namespace tda
