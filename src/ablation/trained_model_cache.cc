#include "ablation/trained_model_cache.h"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <system_error>
#include <utility>

#include "ablation/retrain_cache.h"
#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "common/checksum.h"
#include "common/status_macros.h"

namespace tda {
namespace {

using json = nlohmann::json;

constexpr char kFormat[] = "tda-trained-model/1";
constexpr char kEntry[] = "/entry.json";

// The model of a verified entry; an error saying what is wrong otherwise (kNotFound: none).
absl::StatusOr<std::unique_ptr<Model>> ReadEntry(const std::string& path, const std::string& key) {
  std::string text;
  RETURN_IF_ERROR(ReadFile(path + kEntry, &text));
  std::string fingerprint;
  try {
    const json entry = json::parse(text);
    if (entry.at("format").get<std::string>() != kFormat) {
      return absl::DataLossError("its format is not " + std::string(kFormat));
    }
    if (entry.at("key").get<std::string>() != key) {
      return absl::DataLossError("it holds another recipe (a hash collision or a damaged key)");
    }
    fingerprint = entry.at("fingerprint").get<std::string>();
  } catch (const json::exception& e) {
    return absl::DataLossError(absl::StrCat("its entry.json is not valid (", e.what(), ")"));
  }
  absl::StatusOr<std::unique_ptr<Model>> model = LoadModel(path);
  if (!model.ok()) {
    return absl::DataLossError(
        absl::StrCat("its model does not load (", model.status().message(), ")"));
  }
  if ((*model)->Fingerprint() != fingerprint) {
    return absl::DataLossError("its weights do not have the recorded fingerprint");
  }
  return model;
}

}  // namespace

std::string TrainedModelKey(const ModelConfig& config, const TrainRecipe& recipe,
                            const std::string& data_path, const Dataset& train) {
  TrainRecipe keyed = recipe;
  keyed.train_size = 0;  // the data identity below says which samples were used
  const json key = {{"model", json::parse(ModelConfigToJson(config, keyed))},
                    {"data",
                     {{"name", train.name},
                      {"path", data_path},
                      {"train_size", train.size()},
                      {"train_fingerprint", DataFingerprint(train)}}}};
  return key.dump();
}

absl::StatusOr<CachedModel> CachedTrain(
    const std::string& dir, const std::string& key, const TrainRecipe& recipe,
    const std::function<absl::StatusOr<std::unique_ptr<Model>>()>& train,
    const std::function<void(const std::string&)>& warn) {
  CachedModel out;
  if (!dir.empty()) out.path = absl::StrCat(dir, "/model-", ChecksumHex(Xxh3(key)));
  auto save = [&](const std::unique_ptr<Model>& model) -> absl::Status {
    // The entry goes first and comes back last, so a save cut short leaves no entry.
    std::error_code ignored;
    std::filesystem::remove(out.path + kEntry, ignored);
    const json entry = {{"format", kFormat}, {"key", key}, {"fingerprint", model->Fingerprint()}};
    RETURN_IF_ERROR(model->Save(out.path, recipe));
    return WriteFileAtomically(out.path + kEntry, entry.dump());
  };
  ASSIGN_OR_RETURN(out.model, ReadOrMake<std::unique_ptr<Model>>(
                                  out.path, {"model", "training", "the trained model"},
                                  [&] { return ReadEntry(out.path, key); }, train, save, warn,
                                  &out.from_cache));
  return out;
}

}  // namespace tda
