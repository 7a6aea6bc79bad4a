#include "server/index_version.h"

#include <iostream>
#include <utility>

#include "api/index_description.h"

namespace tda {

absl::StatusOr<std::shared_ptr<IndexVersion>> IndexVersion::Load(std::string name, int64_t version,
                                                                 std::string dir) {
  absl::StatusOr<std::unique_ptr<Attributor>> attributor =
      Attributor::Open(dir, GradientIndex::Verify::kSizes);
  if (!attributor.ok()) return attributor.status();
  return std::shared_ptr<IndexVersion>(
      new IndexVersion(std::move(name), version, std::move(dir), std::move(*attributor)));
}

IndexVersion::IndexVersion(std::string name, int64_t version, std::string dir,
                           std::unique_ptr<Attributor> attributor)
    : name_(std::move(name)),
      version_(version),
      dir_(std::move(dir)),
      attributor_(std::move(attributor)),
      verifier_(std::make_unique<IndexVerifier>(dir_)) {}

IndexVersion::~IndexVersion() {
  verifier_.reset();  // joins a verification still running before the files go
  attributor_.reset();
  std::cerr << "tda-server: index '" << name_ << "' version " << version_ << " closed (" << dir_
            << " no longer open)\n";
}

v1::DescribeIndexResponse IndexVersion::Describe() const {
  v1::DescribeIndexResponse response = DescribeAttributor(*attributor_);
  response.set_index(name_);
  response.set_version(version_);
  v1::IndexVerification* verification = response.mutable_verification();
  switch (verifier_->state()) {
    case IndexVerifier::State::kVerifying:
      verification->set_state(v1::IndexVerification::VERIFYING);
      break;
    case IndexVerifier::State::kVerified:
      verification->set_state(v1::IndexVerification::VERIFIED);
      break;
    case IndexVerifier::State::kFailed:
      verification->set_state(v1::IndexVerification::FAILED);
      verification->set_error(std::string(verifier_->status().message()));
      break;
  }
  verification->set_bytes_checked(verifier_->bytes_checked());
  verification->set_bytes_total(verifier_->bytes_total());
  return response;
}

}  // namespace tda
