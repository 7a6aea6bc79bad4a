// tda.v1.AdminService (proto/tda/v1/admin.proto): server administration, role admin.
// ReloadTokens re-reads the --auth-tokens file through the server's TokenAuthProcessor (null
// on a server without tokens: FAILED_PRECONDITION). ReloadIndexes rescans the server's index
// repository (server/index_repository.h) and waits for the loads it starts (bringing back the
// names UnloadIndex took out of service). UnloadIndex stops serving one name
// (IndexRepository::UnloadByAdmin). Thread-safe.
#pragma once

#include <memory>

#include "server/auth_token_processor.h"
#include "server/index_repository.h"
#include "tda/v1/admin.grpc.pb.h"

namespace tda {

class AdminServiceImpl final : public v1::AdminService::Service {
 public:
  // `repository` must outlive the service.
  AdminServiceImpl(std::shared_ptr<TokenAuthProcessor> tokens, IndexRepository* repository)
      : tokens_(std::move(tokens)), repository_(repository) {}

  grpc::Status ReloadTokens(grpc::ServerContext* context, const v1::ReloadTokensRequest* request,
                            v1::ReloadTokensResponse* response) override;
  grpc::Status ReloadIndexes(grpc::ServerContext* context, const v1::ReloadIndexesRequest* request,
                             v1::ListIndexesResponse* response) override;
  grpc::Status UnloadIndex(grpc::ServerContext* context, const v1::UnloadIndexRequest* request,
                           v1::ListIndexesResponse* response) override;

 private:
  std::shared_ptr<TokenAuthProcessor> tokens_;
  IndexRepository* repository_;
};

}  // namespace tda
