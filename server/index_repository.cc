#include "server/index_repository.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/background_priority.h"
#include "server/repository_layout.h"
#include "server/version_handover.h"

namespace tda {
namespace {

namespace fs = std::filesystem;

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

absl::StatusOr<std::unique_ptr<IndexRepository>> IndexRepository::Open(
    const RepositoryOptions& options) {
  if (options.repository_dir.empty() == options.single_index_dir.empty()) {
    return absl::InvalidArgumentError("give exactly one of a repository or a single index");
  }
  if (options.poll_seconds < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("repository poll seconds must be >= 0, got ", options.poll_seconds));
  }
  auto repository = std::unique_ptr<IndexRepository>(new IndexRepository(options));
  if (!options.single_index_dir.empty()) {
    if (!options.pins.empty()) {
      return absl::InvalidArgumentError("pins need a repository (--repository), not --index");
    }
    fs::path dir(options.single_index_dir);
    const std::string name =
        (dir.has_filename() ? dir.filename() : dir.parent_path().filename()).string();
    absl::StatusOr<std::shared_ptr<IndexVersion>> version =
        IndexVersion::Load(name, 1, options.single_index_dir);
    if (!version.ok()) return version.status();
    repository->names_[name].serving = std::move(*version);
    ++repository->counts_[name].loaded;
    return repository;
  }
  std::error_code error;
  if (!fs::is_directory(options.repository_dir, error)) {
    return absl::InvalidArgumentError(
        absl::StrCat("repository ", options.repository_dir, " is not a directory"));
  }
  repository->Scan(/*initial=*/true, /*retry_failed=*/false);
  return repository;
}

IndexRepository::~IndexRepository() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  changed_.notify_all();
  if (poller_.joinable()) poller_.join();
  std::map<std::string, NameState> closing;
  {
    std::lock_guard<std::mutex> lock(mu_);
    closing.swap(names_);
  }
  // `closing` goes here, outside mu_: verifiers still running report to ReportHealth.
}

void IndexRepository::Start(std::function<void(bool healthy)> on_health) {
  on_health_ = std::move(on_health);
  std::vector<std::shared_ptr<const IndexVersion>> initial;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [name, state] : names_) {
      if (state.serving != nullptr) initial.push_back(state.serving);
    }
  }
  for (const std::shared_ptr<const IndexVersion>& version : initial) {
    version->verifier().Start([this](const absl::Status&) { ReportHealth(); });
  }
  if (!options_.repository_dir.empty()) poller_ = std::thread([this] { PollLoop(); });
}

void IndexRepository::PollLoop() {
  RunThisThreadAtBackgroundPriority();  // loads, verifies and swaps in versions
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    auto due = [this] { return stopping_ || requested_scans_ > finished_scans_; };
    if (options_.poll_seconds > 0) {
      changed_.wait_for(lock, std::chrono::duration<double>(options_.poll_seconds), due);
    } else {
      changed_.wait(lock, due);
    }
    if (stopping_) break;
    const int64_t target = requested_scans_;
    const bool retry = retry_requested_;
    retry_requested_ = false;
    lock.unlock();
    Scan(/*initial=*/false, retry);
    lock.lock();
    finished_scans_ = std::max(finished_scans_, target);
    changed_.notify_all();
  }
}

void IndexRepository::RequestReload() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++requested_scans_;
    retry_requested_ = true;
  }
  changed_.notify_all();
}

v1::ListIndexesResponse IndexRepository::Reload() {
  if (!options_.repository_dir.empty()) {
    std::unique_lock<std::mutex> lock(mu_);
    const int64_t target = ++requested_scans_;
    retry_requested_ = true;
    changed_.notify_all();
    changed_.wait(lock, [&] { return stopping_ || finished_scans_ >= target; });
  }
  return List();
}

void IndexRepository::Scan(bool initial, bool retry_failed) {
  const fs::path root(options_.repository_dir);
  std::error_code error;
  if (!fs::is_directory(root, error)) {
    std::cerr << "tda-server: repository " << root.string()
              << " is not readable now; keeping what is served\n";
    return;
  }
  std::vector<std::string> present;
  for (const fs::path& name_dir : Subdirectories(root, IsServableName)) {
    present.push_back(name_dir.filename().string());
    ScanName(present.back(), name_dir.string(), initial, retry_failed);
  }
  std::vector<std::string> gone;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [name, state] : names_) {
      if (state.unloaded == 0 && std::find(present.begin(), present.end(), name) == present.end()) {
        gone.push_back(name);
      }
    }
  }
  for (const std::string& name : gone) {
    Unload(name, absl::StrCat("its directory ", (root / name).string(), " is gone"),
           /*by_admin=*/false);
  }
}

void IndexRepository::ScanName(const std::string& name, const std::string& name_dir, bool initial,
                               bool retry_failed) {
  std::map<int64_t, std::string, std::greater<>> versions;  // newest first
  for (const fs::path& dir : Subdirectories(name_dir, [](const std::string& n) {
         int64_t v = 0;
         return ParseVersion(n, &v);
       })) {
    int64_t version = 0;
    ParseVersion(dir.filename().string(), &version);
    versions.emplace(version, dir.string());
  }
  std::shared_ptr<const IndexVersion> serving;
  std::map<int64_t, Failure> failed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = names_.find(name);
    if (it != names_.end()) {
      NameState& state = it->second;
      if (state.unloaded_by_admin) {
        if (!retry_failed) return;  // only an explicit Reload brings it back
        state.unloaded_by_admin = false;
      }
      for (auto f = state.failed.begin(); f != state.failed.end();) {
        f = versions.count(f->first) > 0 ? std::next(f) : state.failed.erase(f);
      }
      serving = state.serving;
      failed = state.failed;
    }
  }
  if (versions.empty()) {
    if (serving != nullptr) {
      Unload(name, absl::StrCat("no version directory left in ", name_dir), /*by_admin=*/false);
    }
    return;
  }
  const auto pin = options_.pins.find(name);
  if (pin != options_.pins.end() && versions.count(pin->second) == 0) {
    if (serving == nullptr || serving->version() != pin->second) {
      std::lock_guard<std::mutex> lock(mu_);
      names_[name].failed[pin->second] = {
          absl::StrCat("pinned version ", pin->second, " is not in ", name_dir), ""};
    }
    return;
  }
  for (const auto& [version, dir] : versions) {
    if (pin != options_.pins.end() && version != pin->second) continue;
    if (serving != nullptr && version == serving->version()) {
      if (serving->Usable().ok()) return;  // the newest usable version already serves
      continue;                            // damaged: look for an older one
    }
    if (auto f = failed.find(version); f != failed.end() && !retry_failed) {
      if (VersionFingerprint(dir) == f->second.fingerprint) continue;  // still the broken copy
      std::cerr << "tda-server: index '" << name << "' version " << version
                << " changed since it failed; retrying\n";
    }
    if (LoadVersion(name, version, dir, initial) != nullptr) return;
  }
}

std::shared_ptr<const IndexVersion> IndexRepository::LoadVersion(const std::string& name,
                                                                 int64_t version,
                                                                 const std::string& dir,
                                                                 bool initial) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    names_[name].loading = version;
  }
  const auto start = std::chrono::steady_clock::now();
  // Taken before opening: a change made while the load runs is seen as a change later.
  std::string fingerprint = VersionFingerprint(dir);
  absl::StatusOr<std::shared_ptr<IndexVersion>> loaded = IndexVersion::Load(name, version, dir);
  absl::Status status = loaded.status();
  if (status.ok() && !initial) {
    (*loaded)->verifier().Start({});
    (*loaded)->verifier().Wait();
    status = (*loaded)->Usable();
    if (status.ok()) {
      PrefaultRows((*loaded)->attributor().index());
      WarmSampleLookup((*loaded)->attributor());
    }
  }
  std::shared_ptr<const IndexVersion> previous;  // closed outside mu_, once its calls end
  bool unloaded_meanwhile = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    NameState& state = names_[name];
    state.loading = 0;
    if (state.unloaded_by_admin) {
      unloaded_meanwhile = true;  // unloaded while it loaded: it does not serve
    } else if (!status.ok()) {
      state.failed[version] = {std::string(status.message()), std::move(fingerprint)};
      ++counts_[name].failed;
    } else {
      previous = std::move(state.serving);
      state.serving = *loaded;
      state.unloaded = 0;
      state.unloaded_reason.clear();
      state.failed.erase(state.failed.begin(), state.failed.upper_bound(version));
      ++counts_[name].loaded;
      if (previous != nullptr) ++counts_[name].swaps;
    }
  }
  if (unloaded_meanwhile) {
    std::cerr << "tda-server: index '" << name << "' version " << version
              << " not served: the index was unloaded while it loaded\n";
    return nullptr;
  }
  if (!status.ok()) {
    std::cerr << "tda-server: index '" << name << "' version " << version
              << " cannot serve: " << status.message() << "\n";
    return nullptr;
  }
  std::cerr << "tda-server: index '" << name << "' version " << version << " serving ("
            << (initial ? "opened" : "opened and verified") << " in " << SecondsSince(start)
            << " s)";
  if (previous != nullptr) std::cerr << ", replacing version " << previous->version();
  std::cerr << "\n";
  ReportHealth();
  CloseWhenUnused(std::move(previous));
  return *loaded;
}

void IndexRepository::Unload(const std::string& name, const std::string& reason, bool by_admin) {
  std::shared_ptr<const IndexVersion> previous;  // closed outside mu_, once its calls end
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = names_.find(name);
    if (it == names_.end()) return;
    if (it->second.serving == nullptr) {
      names_.erase(it);  // it never served: nothing to report
      return;
    }
    previous = std::move(it->second.serving);
    it->second = NameState{};
    it->second.unloaded = previous->version();
    it->second.unloaded_reason = reason;
    it->second.unloaded_by_admin = by_admin;
  }
  std::cerr << "tda-server: index '" << name << "' version " << previous->version()
            << " unloaded: " << reason << "\n";
  ReportHealth();
}

void IndexRepository::ReportHealth() const {
  bool healthy = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    for (const auto& [name, state] : names_) {
      if (state.serving != nullptr && !state.serving->Usable().ok()) healthy = false;
    }
  }
  if (on_health_) on_health_(healthy);
}

std::string IndexRepository::ServedNames() const {
  std::vector<std::string> served;
  for (const auto& [name, state] : names_) {
    if (state.unloaded == 0) served.push_back(name);
  }
  return served.empty() ? "none" : absl::StrJoin(served, ", ");
}

absl::StatusOr<const IndexRepository::NameState*> IndexRepository::Resolve(
    const std::string& name) const {
  if (name.empty()) {
    const NameState* only = nullptr;
    int known = 0;
    for (const auto& [candidate, state] : names_) {
      if (state.unloaded == 0) ++known, only = &state;
    }
    if (known == 1) return only;
    return absl::InvalidArgumentError(
        absl::StrCat("this server serves ", known, " indexes (", ServedNames(),
                     "): name one in the request's index field (tda --index-name, Python index=)"));
  }
  auto it = names_.find(name);
  if (it != names_.end() && it->second.unloaded_by_admin) {
    return absl::NotFoundError(absl::StrCat("index '", name, "' was ", it->second.unloaded_reason,
                                            "; served: ", ServedNames()));
  }
  if (it == names_.end() || it->second.unloaded != 0) {
    return absl::NotFoundError(
        absl::StrCat("no index named '", name, "' is served; served: ", ServedNames()));
  }
  return &it->second;
}

absl::StatusOr<std::shared_ptr<const IndexVersion>> IndexRepository::Find(
    const std::string& name) const {
  std::shared_ptr<const IndexVersion> serving;
  {
    std::lock_guard<std::mutex> lock(mu_);
    absl::StatusOr<const NameState*> state = Resolve(name);
    if (!state.ok()) return state.status();
    serving = (*state)->serving;
    if (serving == nullptr) {
      std::vector<std::string> reasons;
      for (const auto& [version, failure] : (*state)->failed) {
        reasons.push_back(absl::StrCat("version ", version, ": ", failure.reason));
      }
      return absl::UnavailableError(absl::StrCat(
          "index '", name, "' has no version serving",
          (*state)->loading != 0 ? absl::StrCat(" (loading version ", (*state)->loading, ")") : "",
          reasons.empty() ? "" : "; ", absl::StrJoin(reasons, "; ")));
    }
  }
  if (absl::Status usable = serving->Usable(); !usable.ok()) return usable;
  return serving;
}

absl::StatusOr<v1::ListIndexesResponse> IndexRepository::UnloadByAdmin(const std::string& name) {
  if (options_.repository_dir.empty()) {
    return absl::FailedPreconditionError(
        "this server serves one index (--index), which nothing could load again once unloaded; "
        "serve a --repository to unload and reload indexes");
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = names_.find(name);
    if (it != names_.end() && it->second.unloaded_by_admin) return ListLocked();  // already
    absl::StatusOr<const NameState*> state = Resolve(name);
    if (!state.ok()) return state.status();
    if ((*state)->serving == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("index '", name,
                       "' has no version serving, so there is nothing to unload (see tda "
                       "admin reload for its versions' states)"));
    }
  }
  Unload(name, "unloaded by an admin (tda admin unload); 'tda admin reload' serves it again",
         /*by_admin=*/true);
  return List();
}

bool IndexRepository::Knows(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  return names_.count(name) > 0;
}

std::map<std::string, IndexRepository::LoadCounts> IndexRepository::Counts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return counts_;
}

std::vector<std::shared_ptr<const IndexVersion>> IndexRepository::ServingVersions() const {
  std::vector<std::shared_ptr<const IndexVersion>> serving;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [name, state] : names_) {
    if (state.serving != nullptr) serving.push_back(state.serving);
  }
  return serving;
}

absl::StatusOr<v1::DescribeIndexResponse> IndexRepository::Describe(const std::string& name) const {
  std::shared_ptr<const IndexVersion> serving;
  int64_t failed_version = 0;
  std::string failed_message;
  {
    std::lock_guard<std::mutex> lock(mu_);
    absl::StatusOr<const NameState*> state = Resolve(name);
    if (!state.ok()) return state.status();
    serving = (*state)->serving;
    if (!(*state)->failed.empty()) {
      failed_version = (*state)->failed.rbegin()->first;
      failed_message = (*state)->failed.rbegin()->second.reason;
    }
  }
  if (serving == nullptr) return Find(name).status();
  v1::DescribeIndexResponse response = serving->Describe();
  response.set_failed_version(failed_version);
  response.set_failed_version_message(failed_message);
  return response;
}

v1::ListIndexesResponse IndexRepository::List() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ListLocked();
}

v1::ListIndexesResponse IndexRepository::ListLocked() const {
  v1::ListIndexesResponse response;
  for (const auto& [name, state] : names_) {
    std::vector<v1::IndexVersionStatus> entries;
    auto add = [&](int64_t version, v1::IndexVersionStatus::State kind, std::string message) {
      v1::IndexVersionStatus& entry = entries.emplace_back();
      entry.set_name(name);
      entry.set_version(version);
      entry.set_state(kind);
      entry.set_message(std::move(message));
      return &entry;
    };
    if (state.loading != 0) add(state.loading, v1::IndexVersionStatus::LOADING, "");
    for (const auto& [version, failure] : state.failed) {
      add(version, v1::IndexVersionStatus::FAILED, failure.reason);
    }
    if (state.serving != nullptr) {
      const absl::Status usable = state.serving->Usable();
      *add(state.serving->version(),
           usable.ok() ? v1::IndexVersionStatus::SERVING : v1::IndexVersionStatus::FAILED,
           std::string(usable.message()))
           ->mutable_description() = state.serving->Describe();
    }
    if (state.unloaded != 0) {
      add(state.unloaded, v1::IndexVersionStatus::UNLOADED, state.unloaded_reason);
    }
    std::stable_sort(entries.begin(), entries.end(),
                     [](const auto& a, const auto& b) { return a.version() > b.version(); });
    for (v1::IndexVersionStatus& entry : entries) *response.add_indexes() = std::move(entry);
  }
  return response;
}

}  // namespace tda
