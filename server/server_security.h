// How tda-server secures its listening port: which credentials it listens with, and the safe
// defaults that keep an unprotected server off the network.
//
// Listen policy (CheckListenPolicy), for a non-loopback --listen address (anything but
// 127.0.0.0/8, ::1 and "localhost": 0.0.0.0, [::], a LAN address, a host name):
//   TLS and tokens                 allowed
//   otherwise                      refused, unless --insecure; then allowed with a loud warning
//   tokens without TLS             refused even with --insecure: tokens would cross the
//                                  network in clear text, and gRPC 1.51 checks tokens only on
//                                  secure credentials (server/auth_token_processor.h), which
//                                  plaintext off loopback cannot have
// Loopback addresses are always allowed.
//
// Credentials (BuildServerCredentials): TLS (--tls-cert/--tls-key) -> SslServerCredentials,
// requiring and verifying a client certificate signed by --tls-client-ca when given (mTLS);
// tokens without TLS -> LocalServerCredentials(LOCAL_TCP) (plaintext, loopback peers only,
// but secure enough for gRPC to run the token processor); neither -> plaintext.
// Thread-compatible.
#pragma once

#include <grpcpp/security/auth_metadata_processor.h>
#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace tda {

struct ServerSecurityOptions {
  std::string auth_tokens_file;    // --auth-tokens; empty: everyone is "anonymous" admin
  std::string tls_cert_file;       // PEM certificate chain
  std::string tls_key_file;        // PEM private key
  std::string tls_client_ca_file;  // PEM CA that signs client certificates (mTLS)
  bool insecure = false;           // allow a non-loopback address without TLS and tokens
  bool tls() const { return !tls_cert_file.empty(); }
  bool tokens() const { return !auth_tokens_file.empty(); }
};

// Whether HOST (of a HOST:PORT listen address, brackets allowed) is a loopback address.
bool IsLoopbackHost(const std::string& host);

// Checks `listen` (HOST:PORT) against the policy above. Returns the warnings to log (e.g.
// "listening on 0.0.0.0:50051 without TLS ..."); kInvalidArgument with what to do instead
// when refused or when the TLS flags are incomplete.
[[nodiscard]] absl::StatusOr<std::vector<std::string>> CheckListenPolicy(
    const std::string& listen, const ServerSecurityOptions& options);

// The credentials to listen with; `processor` (may be null) authenticates calls.
// kNotFound / kInvalidArgument naming a certificate or key file that cannot be read.
[[nodiscard]] absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> BuildServerCredentials(
    const ServerSecurityOptions& options, std::shared_ptr<grpc::AuthMetadataProcessor> processor);

}  // namespace tda
