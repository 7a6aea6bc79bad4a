// Bearer-token authentication and role authorization of every call to tda-server, before any
// handler runs.
//
// Mechanism: a grpc::AuthMetadataProcessor. In gRPC 1.51 it is the only hook that can refuse a
// call with a status of our choosing before the handler: server interceptors
// (experimental::ServerInterceptorFactoryInterface) cannot end a call early with a status of
// their own. The processor sees the call's metadata including ":path" (the full method name),
// so authentication and the role check (server/rpc_roles.h) both happen here, in one place,
// and a method not in the role table is denied. It runs only on secure server credentials:
// SslServerCredentials (TLS) or LocalServerCredentials(LOCAL_TCP) (plaintext from loopback
// peers only; InsecureServerCredentials cannot carry a processor), which is why tda-server
// refuses --auth-tokens on a non-loopback address without TLS (server/server_security.h).
//
// Per call: public methods (health, reflection) pass without a token. Otherwise the
// "authorization: Bearer TOKEN" metadata must hold a token of the current token file
// (constant-time hash comparison), else UNAUTHENTICATED; a token whose role is below the
// method's, PERMISSION_DENIED naming the needed role. The authorization header is consumed
// (handlers never see the token).
//
// Identity is per connection: gRPC 1.51 hands the processor the connection's AuthContext, so
// properties added there stay for every later call on that connection. The first valid token
// on a connection records its name (kCallerProperty, server/caller.h) and role (kRoleProperty,
// server/caller_role.h); a later call on the same connection with a token of another name or
// role is UNAUTHENTICATED ("one token per connection"). Every call's token is still checked
// against the current file, so a revoked token stops working on open connections too.
// (gRPC clients share one connection among channels to the same address unless told not to:
// client/channel.cc sets GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL so each channel has its own.)
//
// Thread-safety: Process runs concurrently on gRPC threads; Reload may be called from any
// thread (the token set is swapped under a mutex).
#pragma once

#include <grpcpp/security/auth_metadata_processor.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "auth/token_file.h"

namespace tda {

class TokenAuthProcessor final : public grpc::AuthMetadataProcessor {
 public:
  // Reads the token file; its errors (kNotFound, kInvalidArgument naming file and line).
  [[nodiscard]] static absl::StatusOr<std::shared_ptr<TokenAuthProcessor>> Load(
      const std::string& token_file);

  // Re-reads the token file and returns how many tokens it holds; on any error the tokens
  // accepted so far stay in force and the error is returned.
  [[nodiscard]] absl::StatusOr<size_t> Reload();
  const std::string& token_file() const { return token_file_; }

  bool IsBlocking() const override { return false; }
  grpc::Status Process(const InputMetadata& auth_metadata, grpc::AuthContext* context,
                       OutputMetadata* consumed_auth_metadata,
                       OutputMetadata* response_metadata) override;

 private:
  explicit TokenAuthProcessor(std::string token_file) : token_file_(std::move(token_file)) {}
  std::shared_ptr<const TokenSet> tokens() const;
  // Records the identity on a fresh connection or checks that it matches the recorded one.
  grpc::Status PinIdentity(const TokenEntry& entry, grpc::AuthContext* context);

  const std::string token_file_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const TokenSet> tokens_ ABSL_GUARDED_BY(mu_);
  absl::Mutex pin_mu_;  // serialises the check-and-add of identity properties
};

}  // namespace tda
