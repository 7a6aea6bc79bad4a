// One numbered version of a served index name: the open Attributor (files mapped), the
// IndexVerifier that checks its checksums, and the self-influence values computed on it
// (SelfInfluenceCache: they belong to this version's rows and go with it). The repository (server/index_repository.h) swaps
// versions by replacing its shared_ptr; calls hold their own shared_ptr for their whole
// duration, so the last one to finish destroys the version, which closes (unmaps) its files --
// after that they may be deleted.
//
// Thread-safety: immutable after Load, except the verifier's state and the self-influence
// cache (both thread-safe themselves).
// The destructor waits for a verification still running.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "attribution/attributor.h"
#include "server/index_verifier.h"
#include "server/self_influence_cache.h"
#include "tda/v1/attribution.pb.h"

namespace tda {

// A cheap fingerprint of a version directory's contents: every file's relative path, size and
// modification time (no hashing). The repository records it when a version fails and retries the
// version once it differs, i.e. after someone changed or replaced its files. "" when `dir`
// cannot be listed.
std::string VersionFingerprint(const std::string& dir);

class IndexVersion {
 public:
  // Opens `dir` checking versions and sizes (errors as Attributor::Open); the checksums are
  // the verifier's job (not started yet: see verifier()).
  [[nodiscard]] static absl::StatusOr<std::shared_ptr<IndexVersion>> Load(std::string name,
                                                                          int64_t version,
                                                                          std::string dir);
  ~IndexVersion();
  IndexVersion(const IndexVersion&) = delete;
  IndexVersion& operator=(const IndexVersion&) = delete;

  const std::string& name() const { return name_; }
  int64_t version() const { return version_; }
  const std::string& dir() const { return dir_; }
  const Attributor& attributor() const { return *attributor_; }
  int64_t rows() const;
  // Bytes of every file its manifest lists (gradient shards, factors, samples, model).
  int64_t bytes() const;
  IndexVerifier& verifier() const { return *verifier_; }
  SelfInfluenceCache& self_influence() const { return self_influence_; }  // thread-safe

  // OK unless verification failed (then its kDataLoss error): calls refuse a damaged index.
  [[nodiscard]] absl::Status Usable() const { return verifier_->status(); }
  // DescribeIndex of this version: the attributor's description, its verification, name and
  // version (paths not hidden: the caller applies HidePaths).
  v1::DescribeIndexResponse Describe() const;

 private:
  IndexVersion(std::string name, int64_t version, std::string dir,
               std::unique_ptr<Attributor> attributor);

  const std::string name_;
  const int64_t version_;
  const std::string dir_;
  std::unique_ptr<Attributor> attributor_;
  std::unique_ptr<IndexVerifier> verifier_;
  mutable SelfInfluenceCache self_influence_;
};

}  // namespace tda
