#include "index/ensemble_manifest.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/atomic_file.h"
#include "common/checksum.h"
#include "common/status_macros.h"
#include "index/gradient_index.h"
#include "index/manifest.h"

namespace tda {
namespace {

using json = nlohmann::json;

constexpr char kEnsembleFormat[] = "tda-ensemble";
constexpr int kEnsembleVersion = 1;

std::string MemberName(int64_t member) { return absl::StrFormat("member-%02d", member); }

absl::StatusOr<std::string> ManifestXxh3(const std::string& member_dir) {
  ASSIGN_OR_RETURN(uint64_t checksum, FileXxh3(member_dir + "/" + kManifestFile));
  return ChecksumHex(checksum);
}

}  // namespace

std::string EnsembleMemberDir(const std::string& dir, int64_t member) {
  return dir + "/" + MemberName(member);
}

bool IsEnsembleDir(const std::string& dir) {
  std::error_code ec;
  return std::filesystem::exists(dir + "/" + kEnsembleFile, ec);
}

absl::Status WriteEnsembleManifest(const std::string& dir, int64_t members) {
  if (members < 1 || members > kMaxIndexEnsembleMembers) {
    return absl::InvalidArgumentError(
        absl::StrCat("an ensemble has 1 to ", kMaxIndexEnsembleMembers, " members, not ", members));
  }
  json list = json::array();
  for (int64_t k = 0; k < members; ++k) {
    ASSIGN_OR_RETURN(std::string checksum, ManifestXxh3(EnsembleMemberDir(dir, k)));
    list.push_back({{"dir", MemberName(k)}, {"manifest_xxh3", checksum}});
  }
  const json root = {{"format", kEnsembleFormat}, {"version", kEnsembleVersion}, {"members", list}};
  return WriteFileAtomically(dir + "/" + kEnsembleFile, root.dump(2) + "\n");
}

absl::StatusOr<EnsembleManifest> ReadEnsembleManifest(const std::string& dir) {
  const std::string path = dir + "/" + kEnsembleFile;
  std::string text;
  RETURN_IF_ERROR(ReadFile(path, &text));
  const json root = json::parse(text, nullptr, /*allow_exceptions=*/false);
  auto malformed = [&](const std::string& what) {
    return absl::DataLossError(absl::StrCat(path, ": ", what,
                                            " (rebuild the ensemble with "
                                            "`tda index build --ensemble`)"));
  };
  if (!root.is_object() || root.value("format", "") != kEnsembleFormat) {
    return malformed("not an ensemble manifest");
  }
  if (!root.contains("version") || !root["version"].is_number_integer()) {
    return malformed("no version");
  }
  if (root["version"].get<int>() > kEnsembleVersion) {
    return absl::FailedPreconditionError(absl::StrCat(path, ": ensemble format version ",
                                                      root["version"].get<int>(),
                                                      " is newer than this tda "
                                                      "reads (",
                                                      kEnsembleVersion, "); upgrade tda"));
  }
  const json& list = root.value("members", json());
  if (!list.is_array() || list.empty() ||
      static_cast<int64_t>(list.size()) > kMaxIndexEnsembleMembers) {
    return malformed(absl::StrCat("members must list 1 to ", kMaxIndexEnsembleMembers, " indexes"));
  }
  EnsembleManifest manifest;
  for (size_t k = 0; k < list.size(); ++k) {
    const json& entry = list[k];
    EnsembleMember member;
    if (!entry.is_object() || !entry.contains("dir") || !entry["dir"].is_string() ||
        !entry.contains("manifest_xxh3") || !entry["manifest_xxh3"].is_string()) {
      return malformed(absl::StrCat("member ", k, " needs dir and manifest_xxh3"));
    }
    member.dir = entry["dir"].get<std::string>();
    member.manifest_xxh3 = entry["manifest_xxh3"].get<std::string>();
    // Only the names tda writes: a member never points outside the ensemble directory.
    if (member.dir != MemberName(static_cast<int64_t>(k))) {
      return malformed(absl::StrCat("member ", k, " must be ", MemberName(static_cast<int64_t>(k)),
                                    ", not '", member.dir, "'"));
    }
    absl::StatusOr<std::string> actual = ManifestXxh3(dir + "/" + member.dir);
    if (!actual.ok()) {
      return absl::DataLossError(
          absl::StrCat("ensemble ", dir, ": member ", member.dir, ": ", actual.status().message()));
    }
    if (*actual != member.manifest_xxh3) {
      return absl::DataLossError(absl::StrCat("ensemble ", dir, ": member ", member.dir,
                                              " changed since the ensemble was built "
                                              "(manifest XXH3 0x",
                                              *actual, " != 0x", member.manifest_xxh3,
                                              "); members change only "
                                              "together: rebuild the ensemble"));
    }
    manifest.members.push_back(std::move(member));
  }
  return manifest;
}

absl::Status VerifyEnsemble(const std::string& dir,
                            const std::function<void(const FileCheck&)>& on_file,
                            const ProgressFn& progress) {
  ASSIGN_OR_RETURN(EnsembleManifest manifest, ReadEnsembleManifest(dir));
  const int64_t members = static_cast<int64_t>(manifest.members.size());
  absl::Status first;
  for (int64_t k = 0; k < members; ++k) {
    const std::string& name = manifest.members[k].dir;
    const std::string detail = absl::StrCat("member ", k + 1, " of ", members);
    first.Update(VerifyIndex(
        dir + "/" + name,
        [&](const FileCheck& check) {
          if (!on_file) return;
          FileCheck named = check;
          named.file = name + "/" + check.file;
          on_file(named);
        },
        [&](std::string_view stage, int64_t done, int64_t total, std::string_view) {
          ReportProgress(progress, stage, done, total, detail);
        }));
  }
  return first;
}

}  // namespace tda
