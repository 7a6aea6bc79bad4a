// The indexes tda-server serves, by name, and their hot reload (README "Serving several
// indexes").
//
// A repository directory holds numbered versions, the TF Serving layout:
//   DIR/<name>/<version>/   version: a positive integer directory name (leading zeros refused)
// Each name serves its newest version that opens, unless pinned to one (RepositoryOptions::
// pins). A single index directory (tda-server --index DIR) is a repository of one: named
// after DIR's last component, version 1, never rescanned.
//
// At start every name's chosen version is opened checking versions and sizes and serves at
// once while its checksums are verified in the background (IndexVerifier, per version: a
// damaged index answers DATA_LOSS, the others go on). Later versions (found by the poller,
// Reload or RequestReload) are opened and fully verified on the repository's own thread
// before they are swapped in; calls in flight keep the version they hold (a shared_ptr) and
// the old version closes when its last call ends. A version that fails to open or verify
// never serves: it is recorded FAILED with its reason (ListIndexes, DescribeIndex), the
// version before keeps serving, and it is retried by an explicit Reload, or by the poller once
// its directory changed since it failed (VersionFingerprint: a fixed copy is picked up, an
// unchanged broken one is not re-verified every poll). A name whose directory (or every
// version of it) disappears is unloaded; so is a name an admin unloads (UnloadByAdmin), which
// the poller then leaves alone until an explicit Reload loads its newest version again.
//
// Thread-safety: all methods may be called from any thread; scans run one at a time on the
// repository's thread. The destructor stops that thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "server/index_version.h"
#include "tda/v1/attribution.pb.h"

namespace tda {

struct RepositoryOptions {
  // Exactly one of the two.
  std::string repository_dir;           // DIR/<name>/<version>/
  std::string single_index_dir;         // one index, named after its last path component
  std::map<std::string, int64_t> pins;  // name -> the only version it may serve
  double poll_seconds = 5;              // rescan period; 0: only on Reload / RequestReload
};

class IndexRepository {
 public:
  // Scans and opens the initial versions (verification not started: see Start).
  // kInvalidArgument for bad options or a repository that is not a directory; for a single
  // index, its open error (as Attributor::Open). A repository name whose versions all fail is
  // recorded FAILED; it does not stop the server.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<IndexRepository>> Open(
      const RepositoryOptions& options);
  ~IndexRepository();
  IndexRepository(const IndexRepository&) = delete;
  IndexRepository& operator=(const IndexRepository&) = delete;

  // Starts the initial versions' verification and the poller. `on_health(healthy)` runs
  // (on repository or verifier threads) whenever the answer to "does every serving version
  // pass verification?" may have changed.
  void Start(std::function<void(bool healthy)> on_health);

  // The version serving `name` ("" = the only name): kNotFound for an unknown name (listing
  // the served names), kInvalidArgument for "" when several (or no) names are served,
  // kUnavailable when the name has no version serving (why: the failure), kDataLoss when its
  // serving version failed verification.
  [[nodiscard]] absl::StatusOr<std::shared_ptr<const IndexVersion>> Find(
      const std::string& name) const;
  // DescribeIndex of `name`'s serving version (paths not hidden), with the newest failed
  // version; errors as Find, except that a damaged serving version is still described.
  [[nodiscard]] absl::StatusOr<v1::DescribeIndexResponse> Describe(const std::string& name) const;
  // Whether `name` is a name the repository has seen (served, failed or unloaded).
  bool Knows(const std::string& name) const;
  // Every name's serving, loading, failed and unloaded versions.
  v1::ListIndexesResponse List() const;

  // Asks for a rescan now (SIGHUP) and returns at once.
  void RequestReload();
  // Rescans now, retrying versions that failed before and loading the names an admin
  // unloaded, and returns List() once done.
  v1::ListIndexesResponse Reload();
  // Stops serving `name` (AdminService.UnloadIndex): new calls answer NOT_FOUND saying so,
  // calls in flight finish on the version they hold; it stays UNLOADED (the poller skips it)
  // until Reload. Returns List(). kNotFound for a name not served, kFailedPrecondition for a
  // name with no version serving or for a single index (--index: nothing could reload it).
  [[nodiscard]] absl::StatusOr<v1::ListIndexesResponse> UnloadByAdmin(const std::string& name);

  // Counts since start, per name (metrics): loads by outcome, and swaps (a load that replaced
  // a serving version).
  struct LoadCounts {
    int64_t loaded = 0;
    int64_t failed = 0;
    int64_t swaps = 0;
  };
  std::map<std::string, LoadCounts> Counts() const;
  // The version serving each name (damaged ones included).
  std::vector<std::shared_ptr<const IndexVersion>> ServingVersions() const;

 private:
  struct Failure {
    std::string reason;
    std::string fingerprint;  // VersionFingerprint of its directory before the failed load
  };
  struct NameState {
    std::shared_ptr<const IndexVersion> serving;
    int64_t loading = 0;                // version being loaded; 0: none
    std::map<int64_t, Failure> failed;  // newer than serving only
    int64_t unloaded = 0;               // the version that served when the name went away
    std::string unloaded_reason;
    bool unloaded_by_admin = false;  // skipped by the poller until an explicit Reload
  };

  explicit IndexRepository(RepositoryOptions options) : options_(std::move(options)) {}
  // One pass over the repository directory (the repository's thread, or Open's).
  void Scan(bool initial, bool retry_failed);
  void ScanName(const std::string& name, const std::string& name_dir, bool initial,
                bool retry_failed);
  // Opens (and, unless initial, fully verifies) a version; records it FAILED on error.
  std::shared_ptr<const IndexVersion> LoadVersion(const std::string& name, int64_t version,
                                                  const std::string& dir, bool initial);
  void Unload(const std::string& name, const std::string& reason, bool by_admin);
  void PollLoop();
  void ReportHealth() const;
  [[nodiscard]] absl::StatusOr<const NameState*> Resolve(const std::string& name) const;  // mu_ held
  std::string ServedNames() const;                                          // mu_ held
  v1::ListIndexesResponse ListLocked() const;                               // mu_ held

  const RepositoryOptions options_;
  std::function<void(bool)> on_health_;  // set by Start, before any other thread reads it

  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::map<std::string, NameState> names_;  // guarded by mu_
  std::map<std::string, LoadCounts> counts_;  // guarded by mu_
  int64_t requested_scans_ = 0;             // guarded by mu_
  int64_t finished_scans_ = 0;              // guarded by mu_
  bool retry_requested_ = false;            // guarded by mu_
  bool stopping_ = false;                   // guarded by mu_
  std::thread poller_;
};

}  // namespace tda
