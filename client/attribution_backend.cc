#include "client/attribution_backend.h"

#include <utility>

#include "client/remote_attributor.h"
#include "api/api_conversion.h"
#include "api/index_description.h"

namespace tda {

absl::StatusOr<std::unique_ptr<LocalAttributor>> LocalAttributor::Open(
    const std::string& index_dir) {
  absl::StatusOr<std::unique_ptr<Attributor>> attributor = Attributor::Open(index_dir);
  if (!attributor.ok()) return attributor.status();
  return std::make_unique<LocalAttributor>(std::move(*attributor));
}

LocalAttributor::LocalAttributor(std::unique_ptr<Attributor> attributor)
    : attributor_(std::move(attributor)) {}

absl::StatusOr<std::vector<QueryResult>> LocalAttributor::Attribute(
    const std::vector<Query>& queries, const AttributeOptions& options) const {
  return attributor_->Attribute(queries, options);
}

absl::StatusOr<SampleData> LocalAttributor::GetSample(const std::string& id) const {
  return attributor_->GetSample(id);
}

absl::StatusOr<v1::DescribeIndexResponse> LocalAttributor::Describe() const {
  return DescribeAttributor(*attributor_);
}

absl::StatusOr<std::unique_ptr<AttributionBackend>> OpenBackend(const ConnectionOptions& server,
                                                                const std::string& index_dir,
                                                                const std::string& index_name) {
  if (server.address.empty() == index_dir.empty()) {
    return absl::InvalidArgumentError("give exactly one of --server ADDR or --index DIR");
  }
  if (!server.address.empty()) {
    RemoteAttributor::Options options;
    options.index_name = index_name;
    absl::StatusOr<std::unique_ptr<RemoteAttributor>> remote =
        RemoteAttributor::Connect(server, options);
    if (!remote.ok()) return remote.status();
    return std::unique_ptr<AttributionBackend>(std::move(*remote));
  }
  absl::StatusOr<std::unique_ptr<LocalAttributor>> local = LocalAttributor::Open(index_dir);
  if (!local.ok()) return local.status();
  return std::unique_ptr<AttributionBackend>(std::move(*local));
}

}  // namespace tda
