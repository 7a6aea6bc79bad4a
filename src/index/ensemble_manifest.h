// An ensemble index (TRAK's lever: scores averaged over independently trained models): a
// directory holding E member indexes, DIR/member-00 ... DIR/member-<E-1>, each an ordinary
// gradient index of one model over the same training rows, and DIR/ensemble.json naming them
// with the XXH3 of each member's manifest.json. ensemble.json is written last and atomically, so
// a directory without a valid one is no ensemble; a member whose manifest no longer has the
// recorded checksum (rebuilt, appended to, deleted from) makes the ensemble kDataLoss: members
// change only together, by building the ensemble again.
//
// The ensemble's score of (row i, query q) is the mean of its members' scores
// (attribution/ensemble_scan.h); a query may use only its first k members.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/progress.h"

namespace tda {

struct FileCheck;  // index/gradient_index.h

inline constexpr char kEnsembleFile[] = "ensemble.json";
inline constexpr int64_t kMaxIndexEnsembleMembers = 100;

struct EnsembleMember {
  std::string dir;            // relative to the ensemble directory: "member-00", ...
  std::string manifest_xxh3;  // 16 hex digits of the member's manifest.json
};

struct EnsembleManifest {
  std::vector<EnsembleMember> members;  // 1 .. kMaxIndexEnsembleMembers, member 0 first
};

// DIR/member-<k> (two digits at least).
std::string EnsembleMemberDir(const std::string& dir, int64_t member);

// True when DIR holds an ensemble.json (valid or not).
bool IsEnsembleDir(const std::string& dir);

// Writes DIR/ensemble.json for members member-00 .. member-<members - 1>, which must all be
// complete indexes (their manifests are hashed now).
[[nodiscard]] absl::Status WriteEnsembleManifest(const std::string& dir, int64_t members);

// Reads and checks DIR/ensemble.json: kNotFound when missing, kDataLoss (naming the file) when
// malformed or when a member's manifest.json is missing or differs from the recorded checksum.
[[nodiscard]] absl::StatusOr<EnsembleManifest> ReadEnsembleManifest(const std::string& dir);

// VerifyIndex of every member (index/gradient_index.h), continuing past a bad member;
// FileCheck::file names "<member dir>/<file>". Progress: ("verify", bytes, total) over all.
[[nodiscard]] absl::Status VerifyEnsemble(const std::string& dir,
                                          const std::function<void(const FileCheck&)>& on_file,
                                          const ProgressFn& progress);

}  // namespace tda
