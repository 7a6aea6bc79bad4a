// The ensemble half of BuildModelIndex (ops/build_model_index.h): the members' models (given,
// or trained now from member 0's recipe with seeds recipe.seed + k), one member index each,
// then ensemble.json. Thread-compatible: one build per call.
#pragma once

#include <functional>

#include "absl/status/statusor.h"
#include "common/progress.h"
#include "ops/build_model_index.h"

namespace tda {

// REQUIRES request.ensemble > 1 (BuildModelIndex calls this for such requests).
[[nodiscard]] absl::StatusOr<ModelIndexPlan> BuildEnsembleIndex(
    const ModelIndexRequest& request, const ProgressFn& progress,
    const std::function<void(const ModelIndexPlan&)>& on_plan);

}  // namespace tda
