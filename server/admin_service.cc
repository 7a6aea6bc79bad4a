#include "server/admin_service.h"

#include <iostream>

#include "api/status_conversion.h"
#include "server/caller.h"

namespace tda {

grpc::Status AdminServiceImpl::ReloadTokens(grpc::ServerContext* context,
                                            const v1::ReloadTokensRequest*,
                                            v1::ReloadTokensResponse* response) {
  if (tokens_ == nullptr) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "this server runs without --auth-tokens: there are no tokens to reload");
  }
  absl::StatusOr<size_t> loaded = tokens_->Reload();
  if (!loaded.ok()) {
    std::cerr << "tda-server: token reload by '" << CallerName(*context)
              << "' failed, keeping the previous tokens: " << loaded.status().message() << "\n";
    return ToGrpcStatus(loaded.status());
  }
  std::cerr << "tda-server: '" << CallerName(*context) << "' reloaded " << *loaded
            << " token(s) from " << tokens_->token_file() << "\n";
  response->set_tokens(static_cast<int64_t>(*loaded));
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::ReloadIndexes(grpc::ServerContext* context,
                                             const v1::ReloadIndexesRequest*,
                                             v1::ListIndexesResponse* response) {
  std::cerr << "tda-server: '" << CallerName(*context) << "' asked for an index reload\n";
  *response = repository_->Reload();
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::UnloadIndex(grpc::ServerContext* context,
                                           const v1::UnloadIndexRequest* request,
                                           v1::ListIndexesResponse* response) {
  if (request->index().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "name the index to unload (tda admin unload --server ADDR NAME)");
  }
  absl::StatusOr<v1::ListIndexesResponse> indexes = repository_->UnloadByAdmin(request->index());
  if (!indexes.ok()) return ToGrpcStatus(indexes.status());
  std::cerr << "tda-server: '" << CallerName(*context) << "' unloaded index '" << request->index()
            << "'\n";
  *response = std::move(*indexes);
  return grpc::Status::OK;
}

}  // namespace tda
