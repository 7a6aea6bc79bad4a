#include "ablation/retrain_cache.h"

#include <iostream>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "common/checksum.h"
#include "common/status_macros.h"
#include "data/token_cache.h"

namespace tda {
namespace {

using json = nlohmann::json;

constexpr char kFormat[] = "tda-lds-retraining/1";

json PayloadJson(const LdsRetraining& r) {
  json measured = json::array();
  for (Eigen::Index m = 0; m < r.measured.rows(); ++m) {
    std::vector<double> row(r.measured.cols());
    for (Eigen::Index q = 0; q < r.measured.cols(); ++q) row[q] = r.measured(m, q);
    measured.push_back(row);
  }
  return {{"train_size", r.train_size},
          {"subsets", r.subsets},
          {"measured", measured},
          {"seconds", r.seconds}};
}

// The payload of a verified entry; an error saying what is wrong otherwise.
absl::StatusOr<LdsRetraining> ReadEntry(const std::string& path, const std::string& key) {
  std::string text;
  RETURN_IF_ERROR(ReadFile(path, &text));
  try {
    const json entry = json::parse(text);
    if (entry.at("format").get<std::string>() != kFormat) {
      return absl::DataLossError("its format is not " + std::string(kFormat));
    }
    if (entry.at("key").get<std::string>() != key) {
      return absl::DataLossError("it holds another recipe (a hash collision or a damaged key)");
    }
    const json& payload = entry.at("payload");
    if (entry.at("checksum").get<std::string>() != ChecksumHex(Xxh3(payload.dump()))) {
      return absl::DataLossError("its checksum does not match its contents");
    }
    LdsRetraining out;
    out.train_size = payload.at("train_size").get<int64_t>();
    out.subsets = payload.at("subsets").get<std::vector<std::vector<int64_t>>>();
    out.seconds = payload.at("seconds").get<double>();
    const json& measured = payload.at("measured");
    const int64_t rows = static_cast<int64_t>(measured.size());
    const int64_t cols = rows > 0 ? static_cast<int64_t>(measured[0].size()) : 0;
    if (rows != static_cast<int64_t>(out.subsets.size())) {
      return absl::DataLossError("its measurements and subsets disagree in number");
    }
    out.measured.resize(rows, cols);
    for (int64_t m = 0; m < rows; ++m) {
      const std::vector<double> row = measured[m].get<std::vector<double>>();
      if (static_cast<int64_t>(row.size()) != cols) {
        return absl::DataLossError("its measurement rows differ in length");
      }
      for (int64_t q = 0; q < cols; ++q) out.measured(m, q) = row[q];
    }
    return out;
  } catch (const json::exception& e) {
    return absl::DataLossError(absl::StrCat("it is not a valid entry (", e.what(), ")"));
  }
}

}  // namespace

std::string DataFingerprint(const Dataset& data) {
  Xxh3Stream stream;
  stream.Update(data.features.data(), data.features.size() * sizeof(float));
  stream.Update(data.labels.data(), data.labels.size() * sizeof(int32_t));
  return ChecksumHex(stream.Digest());
}

std::string DefaultRetrainCacheDir() { return DefaultTokenCacheRoot() + "/retrainings"; }

std::string RetrainingKey(const ModelConfig& config, const TrainRecipe& recipe,
                          const std::string& data_path, const Dataset& train,
                          const Dataset& queries, const LdsOptions& options) {
  TrainRecipe keyed = recipe;
  keyed.train_size = 0;  // the data identity below says which samples were used
  const json key = {{"model", json::parse(ModelConfigToJson(config, keyed))},
                    {"data",
                     {{"name", train.name},
                      {"path", data_path},
                      {"train_size", train.size()},
                      {"train_fingerprint", DataFingerprint(train)},
                      {"query_fingerprint", DataFingerprint(queries)},
                      {"query_ids", queries.ids}}},
                    {"lds",
                     {{"subsets", options.subsets},
                      {"alpha", options.alpha},
                      {"seed", options.seed},
                      {"seeds_per_subset", options.seeds_per_subset},
                      {"measurement", MeasurementName(options.measurement)}}}};
  return key.dump();
}

void CacheWarning(const std::function<void(const std::string&)>& warn, const std::string& text) {
  if (warn) {
    warn(text);
  } else {
    std::cerr << "tda: warning: " << text << "\n";
  }
}

absl::StatusOr<CachedRetraining> CachedRetrain(
    const std::string& dir, const std::string& key,
    const std::function<absl::StatusOr<LdsRetraining>()>& retrain,
    const std::function<void(const std::string&)>& warn) {
  CachedRetraining out;
  if (!dir.empty()) out.path = absl::StrCat(dir, "/lds-", ChecksumHex(Xxh3(key)), ".json");
  auto save = [&](const LdsRetraining& retraining) -> absl::Status {
    const json payload = PayloadJson(retraining);
    const json entry = {{"format", kFormat},
                        {"key", key},
                        {"checksum", ChecksumHex(Xxh3(payload.dump()))},
                        {"payload", payload}};
    RETURN_IF_ERROR(MakeDirectories(dir));
    return WriteFileAtomically(out.path, entry.dump());
  };
  ASSIGN_OR_RETURN(out.retraining,
                   ReadOrMake<LdsRetraining>(
                       out.path, {"retraining", "retraining", "the retraining"},
                       [&] { return ReadEntry(out.path, key); }, retrain, save, warn,
                       &out.from_cache));
  return out;
}

}  // namespace tda
