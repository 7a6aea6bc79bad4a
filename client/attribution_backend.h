// What the query-side commands (tda query, tda describe) need from an index, whether it is
// opened in this process (LocalAttributor) or served by tda-server (RemoteAttributor). Both
// return the engine's own types, so rendering is shared and the two paths can be compared
// value by value.
//
// Thread-safety: implementations are safe to call concurrently.
#pragma once

#include "client/channel.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "attribution/attributor.h"
#include "tda/v1/attribution.pb.h"

namespace tda {

class AttributionBackend {
 public:
  virtual ~AttributionBackend() = default;

  // As Attributor::Attribute.
  [[nodiscard]] virtual absl::StatusOr<std::vector<QueryResult>> Attribute(
      const std::vector<Query>& queries, const AttributeOptions& options) const = 0;
  // As Attributor::GetSample.
  [[nodiscard]] virtual absl::StatusOr<SampleData> GetSample(const std::string& id) const = 0;
  // As the DescribeIndex RPC.
  [[nodiscard]] virtual absl::StatusOr<v1::DescribeIndexResponse> Describe() const = 0;
};

// Serves Attribute / GetSample / Describe from an index opened in this process.
class LocalAttributor : public AttributionBackend {
 public:
  // Opens DIR as Attributor::Open does.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<LocalAttributor>> Open(const std::string& index_dir);
  explicit LocalAttributor(std::unique_ptr<Attributor> attributor);

  [[nodiscard]] absl::StatusOr<std::vector<QueryResult>> Attribute(
      const std::vector<Query>& queries, const AttributeOptions& options) const override;
  [[nodiscard]] absl::StatusOr<SampleData> GetSample(const std::string& id) const override;
  [[nodiscard]] absl::StatusOr<v1::DescribeIndexResponse> Describe() const override;

  const Attributor& attributor() const { return *attributor_; }

 private:
  std::unique_ptr<Attributor> attributor_;
};

// --server ADDR (remote, `server.address`; calls name the served index `index_name`, "" =
// the server's only one) or --index DIR (offline): exactly one must be non-empty.
[[nodiscard]] absl::StatusOr<std::unique_ptr<AttributionBackend>> OpenBackend(const ConnectionOptions& server,
                                                                const std::string& index_dir,
                                                                const std::string& index_name = "");

}  // namespace tda
