#include "server/index_version.h"

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "api/index_description.h"
#include "index/gradient_index.h"

namespace tda {

std::string VersionFingerprint(const std::string& dir) {
  namespace fs = std::filesystem;
  std::vector<std::string> entries;
  std::error_code error;
  for (fs::recursive_directory_iterator it(dir, error), end; !error && it != end;
       it.increment(error)) {
    std::error_code stat_error;
    const fs::file_status status = it->symlink_status(stat_error);
    if (stat_error) continue;
    const uintmax_t size = fs::is_regular_file(status) ? it->file_size(stat_error) : 0;
    const auto mtime = it->last_write_time(stat_error);
    entries.push_back(absl::StrCat(fs::relative(it->path(), dir, stat_error).string(), " ",
                                   static_cast<int>(status.type()), " ", size, " ",
                                   mtime.time_since_epoch().count()));
  }
  if (error) return "";
  std::sort(entries.begin(), entries.end());
  return absl::StrJoin(entries, "\n");
}

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

int64_t IndexVersion::rows() const { return attributor_->index().rows(); }

int64_t IndexVersion::bytes() const {
  uint64_t bytes = 0;
  for (int64_t k = 0; k < attributor_->ensemble_size(); ++k) {
    const Manifest& manifest = attributor_->member(k).index().manifest();
    bytes += manifest.factors.bytes + manifest.samples.bytes + manifest.model_weights.bytes +
             manifest.model_config.bytes + manifest.tombstones.bytes;
    for (const ShardEntry& shard : manifest.shards) bytes += shard.file.bytes;
  }
  return static_cast<int64_t>(bytes);
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
