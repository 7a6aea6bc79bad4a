// tda.v1.AdminService (proto/tda/v1/admin.proto): server administration, role admin.
// ReloadTokens re-reads the --auth-tokens file through the server's TokenAuthProcessor (null
// on a server without tokens: FAILED_PRECONDITION). Thread-safe.
#pragma once

#include <memory>

#include "server/auth_token_processor.h"
#include "tda/v1/admin.grpc.pb.h"

namespace tda {

class AdminServiceImpl final : public v1::AdminService::Service {
 public:
  explicit AdminServiceImpl(std::shared_ptr<TokenAuthProcessor> tokens)
      : tokens_(std::move(tokens)) {}

  grpc::Status ReloadTokens(grpc::ServerContext* context, const v1::ReloadTokensRequest* request,
                            v1::ReloadTokensResponse* response) override;

 private:
  std::shared_ptr<TokenAuthProcessor> tokens_;
};

}  // namespace tda
