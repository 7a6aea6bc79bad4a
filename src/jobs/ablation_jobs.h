// The ablation job kinds (see job_kinds.h for the others):
//
//   ablation            remove training samples (ids, whole data sources, or the top-k
//                       proponents of a query) and measure, for every query of every task,
//                       the predicted, Newton-step (approximate unlearning) and retrained change
//                       of its loss (src/ablation/removal_ablation.h); JSON result written
//                       atomically, the unlearned model saved when asked. Not restarted after a
//                       crash (marked interrupted).
//   source-task-matrix  the predicted effect of removing each data source on each task, with
//                       similar / opposite / orthogonal source pairs (source_task_matrix.h);
//                       JSON, CSV and an SVG heatmap. Restartable.
//
// A task is "class:<name or number>[:N]" (Fashion-MNIST test images of a class, first N,
// default 100) or "source:<category>[:N]" (held-out fortunes of a category, first N, default
// all); several are separated by ';'.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ablation/removal_ablation.h"
#include "data/dataset.h"
#include "jobs/job_context.h"
#include "jobs/job_kinds.h"
#include "model/model_config.h"

namespace tda {

const JobKind& AblationJobKind();
const JobKind& SourceTaskMatrixJobKind();

// `spec` is a normalised spec (every field present) as compact JSON.
[[nodiscard]] absl::StatusOr<std::string> RunAblationJob(const std::string& spec_json, JobContext& context);
[[nodiscard]] absl::StatusOr<std::string> RunSourceTaskMatrixJob(const std::string& spec_json,
                                                   JobContext& context);

// Parses a ';'-separated task list for a model (see above). kInvalidArgument naming the task
// for unknown kinds, classes or sources, or a task of the wrong data set for the model.
[[nodiscard]] absl::StatusOr<std::vector<AblationTask>> ParseAblationTasks(const std::string& text,
                                                             const ModelConfig& config,
                                                             const TrainRecipe& recipe);

}  // namespace tda
