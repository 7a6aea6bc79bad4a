// Trained models saved under the evaluation cache (the ensemble members of
// ablation/ensemble_scores.h), so a later run of the same recipe loads them instead of training
// them again. An entry is keyed by everything that determines the trained weights: the model
// config + train recipe (ModelConfigToJson: seed included, recipe.train_size dropped) and the
// training data's identity (name, path, size, DataFingerprint of features and labels).
// Layout: <dir>/model-<16 hex of the key's XXH3>/ holds the model as Model::Save writes it and
// entry.json {"format", "key", "fingerprint" (the weights' Model::Fingerprint)}, written last and
// atomically: a directory without a matching entry.json is no entry. An entry is used only when
// its format and key match and the loaded weights have the recorded fingerprint; a damaged one
// is reported and the model trained and saved again over it (the directory name is one only
// tda writes). Thread-compatible.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "data/dataset.h"
#include "model/model.h"
#include "model/model_config.h"

namespace tda {

// The key's text (what the directory name hashes).
std::string TrainedModelKey(const ModelConfig& config, const TrainRecipe& recipe,
                            const std::string& data_path, const Dataset& train);

struct CachedModel {
  std::unique_ptr<Model> model;
  bool from_cache = false;  // loaded from an entry (else trained now, and saved)
  std::string path;         // the entry's directory ("" without a cache)
};

// The model of `key` from `dir` when a valid entry exists; else `train()`, saved there with
// `recipe` as its config.json recipe. `warn` (default: stderr) is told about a damaged entry
// and about a failure to save (the trained model is still returned). `dir` "" = no cache.
[[nodiscard]] absl::StatusOr<CachedModel> CachedTrain(
    const std::string& dir, const std::string& key, const TrainRecipe& recipe,
    const std::function<absl::StatusOr<std::unique_ptr<Model>>()>& train,
    const std::function<void(const std::string&)>& warn = {});

}  // namespace tda
