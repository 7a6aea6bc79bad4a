// The use case "index a trained model": load the model and its recipe, open the training rows
// the recipe names (OpenRecipeRows: Fashion-MNIST, fortunes or a JSONL corpus, the last streamed
// from its token cache, never held in memory), and build the gradient index. Written once here; `tda index build` and the build-index job kind call it.
//
// Thread-compatible: one build per call.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/progress.h"
#include "index/index_builder.h"

namespace tda {

struct ModelIndexRequest {
  // index.model_dir and index.out_dir say what to index and where; the rest how.
  IndexBuildOptions index;
  std::string data_dir;               // "" = the model's (its recipe's, else the default)
  int64_t train_size = -1;            // index the first N training samples; -1 = the model's
  bool allow_changed_corpus = false;  // see LoadRecipeData
  std::string cache_dir;              // token cache root of a jsonl corpus; "" = the default
  Collective* collective = nullptr;   // a data-parallel build's ranks (see BuildIndex)
  // An ensemble index (index/ensemble_manifest.h) of `ensemble` members, built one after
  // another into index.out_dir/member-<k> with the same options: member 0 indexes
  // index.model_dir, members 1.. the models of `member_models` in order, the rest models
  // trained now by member 0's recipe with seeds recipe.seed + k (each kept as its member's
  // model/). ensemble.json is written once every member is complete. 1: a single index.
  int64_t ensemble = 1;
  std::vector<std::string> member_models;
};

// What is about to be indexed (told before the build starts, for logs and progress lines).
struct ModelIndexPlan {
  int64_t rows = 0;
  bool documents = false;  // a sequence model's documents, else images / feature rows
  int64_t truncated = 0;   // documents cut at the context (chunk_stride 0)
  int64_t chunk_stride = 0;  // long documents: windows this many tokens apart (0: truncated)
  int64_t context_length = 0;
  std::string data_dir;  // resolved
  int64_t member = 0, members = 1;  // an ensemble's member being indexed, of `members`
};

// "true" | "empirical" (the CLI flag and the job field); kInvalidArgument otherwise.
[[nodiscard]] absl::StatusOr<FisherKind> ParseFisherKind(const std::string& name);

// Builds request.index.out_dir. `on_plan` (optional) is called once the rows are loaded (of
// every member of an ensemble). An ensemble is built into a new or empty directory or over an
// older ensemble (whose ensemble.json is removed first, so an interrupted build leaves none);
// kFailedPrecondition for a directory holding a single index; not data-parallel.
[[nodiscard]] absl::StatusOr<ModelIndexPlan> BuildModelIndex(
    const ModelIndexRequest& request, const ProgressFn& progress = {},
    const std::function<void(const ModelIndexPlan&)>& on_plan = {});

}  // namespace tda
