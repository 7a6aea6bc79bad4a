// Saved LDS retrainings: the M x Q measurements of models retrained on subsets
// (ablation/lds.h) are the expensive half of an LDS; saving them lets any method be re-scored
// without retraining. An entry is keyed by everything that determines it:
//   the model config + train recipe (ModelConfigToJson), the data identity (data set name and
//   path, sizes, an XXH3 fingerprint of the training and query features and labels), the LDS
//   options (subsets, alpha, seed, seeds per subset, measurement) and the query ids.
// Layout: <dir>/lds-<16 hex of the key's XXH3>.json, {"format", "key", "checksum", "payload"},
// written atomically; read back only when its format, key and checksum (XXH3 of the payload's
// JSON text) all match. Doubles round-trip exactly through the JSON text, so a cached
// retraining gives bit-identical LDS. A damaged entry is reported and recomputed (then written
// again over it: the file name is one only tda writes). Thread-compatible; concurrent writers
// of one key both write complete files (atomic rename), so readers never see a torn entry.
#pragma once

#include <functional>
#include <string>

#include "ablation/lds.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/progress.h"
#include "data/dataset.h"
#include "model/model_config.h"

namespace tda {

// $TDA_CACHE_DIR/retrainings (else under $XDG_CACHE_HOME/tda or ~/.cache/tda, as the token
// cache).
std::string DefaultRetrainCacheDir();

// XXH3 of a data set's features and labels, as hex (part of the cache keys).
std::string DataFingerprint(const Dataset& data);

// The cache key's text (what the file name hashes); `data_path` names where the data came
// from (a directory or files).
std::string RetrainingKey(const ModelConfig& config, const TrainRecipe& recipe,
                          const std::string& data_path, const Dataset& train,
                          const Dataset& queries, const LdsOptions& options);

// `text` to `warn`, or to stderr as "tda: warning: ..." when `warn` is empty.
void CacheWarning(const std::function<void(const std::string&)>& warn, const std::string& text);

// The read-or-make step of the evaluation caches (this file's and trained_model_cache.h's).
// With a `path`: read() the entry; a value is returned with *from_cache set; NotFound means
// there is none, and any other error is warned about ("saved <noun> <path> is unusable: ...;
// <redo> and saving it again"). Otherwise make(), then with a path save() it: a failed save is
// only warned about ("could not save <saved> to <path>: ...").
struct CacheWording {
  const char* noun;   // "retraining"
  const char* redo;   // "retraining"
  const char* saved;  // "the retraining"
};
template <typename T>
absl::StatusOr<T> ReadOrMake(const std::string& path, const CacheWording& wording,
                             const std::function<absl::StatusOr<T>()>& read,
                             const std::function<absl::StatusOr<T>()>& make,
                             const std::function<absl::Status(const T&)>& save,
                             const std::function<void(const std::string&)>& warn,
                             bool* from_cache) {
  *from_cache = false;
  if (!path.empty()) {
    absl::StatusOr<T> cached = read();
    if (cached.ok()) {
      *from_cache = true;
      return cached;
    }
    if (!absl::IsNotFound(cached.status())) {
      CacheWarning(warn, absl::StrCat("saved ", wording.noun, " ", path, " is unusable: ",
                                      cached.status().message(), "; ", wording.redo,
                                      " and saving it again"));
    }
  }
  absl::StatusOr<T> made = make();
  if (!made.ok() || path.empty()) return made;
  const absl::Status saved = save(*made);
  if (!saved.ok()) {
    CacheWarning(warn, absl::StrCat("could not save ", wording.saved, " to ", path, ": ",
                                    saved.message()));
  }
  return made;
}

struct CachedRetraining {
  LdsRetraining retraining;
  bool from_cache = false;  // read back from an entry (else retrained now, and saved)
  std::string path;         // the entry's file
};

// The retraining of `key` from `dir` when a valid entry exists; else `retrain()` and saves it
// there. `warn` (default: stderr) is told about a damaged or unreadable entry; a failure to
// save is a warning too (the result is still returned). `dir` "" = no cache.
[[nodiscard]] absl::StatusOr<CachedRetraining> CachedRetrain(
    const std::string& dir, const std::string& key,
    const std::function<absl::StatusOr<LdsRetraining>()>& retrain,
    const std::function<void(const std::string&)>& warn = {});

}  // namespace tda
