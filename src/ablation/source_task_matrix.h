// The source x task map: for every data source s and task t, the predicted change of t's mean
// query loss if all of s's training samples were removed,
//   effect(s, t) = mean over queries q of t of (1/N) sum_{i in s} score(i, q),
// and a grouping of source pairs by how alike their influence profiles across tasks are:
// "similar" (Pearson r >= 0.5: the sources teach the same capabilities), "opposite"
// (r <= -0.5: one source's samples push those tasks the other way), "orthogonal" (|r| < 0.2),
// "mixed" otherwise. Retrained checks of chosen cells are RunRemovalAblation's job.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "ablation/removal_ablation.h"
#include "absl/status/statusor.h"

namespace tda {

struct SourcePair {
  std::string a, b;
  double pearson = 0;
  std::string relation;  // similar | opposite | orthogonal | mixed
};

struct SourceTaskMatrix {
  std::vector<std::string> sources;  // rows, sorted by name
  std::vector<int64_t> source_sizes; // training samples per source
  std::vector<std::string> tasks;    // columns, as given
  Eigen::MatrixXd effect;            // sources x tasks (predicted mean loss change)
  std::vector<SourcePair> pairs;     // every pair of sources, strongest |r| first
};

// `train.sources` names each training row's source; `scores` as in RunRemovalAblation.
// kInvalidArgument for no tasks, an empty task, missing sources or a score matrix of the wrong
// shape.
[[nodiscard]] absl::StatusOr<SourceTaskMatrix> ComputeSourceTaskMatrix(const Dataset& train,
                                                         const std::vector<AblationTask>& tasks,
                                                         const TrainingScoreFn& scores);

// "similar" | "opposite" | "orthogonal" | "mixed" for a Pearson correlation (thresholds above).
const char* RelationOf(double pearson);

// CSV with a header row "source,samples,<task>,...", one row per source.
std::string SourceTaskMatrixCsv(const SourceTaskMatrix& matrix);

// A self-contained SVG heatmap (diverging colours: red = removal raises the loss, i.e. the
// source helps the task; blue = removal lowers it), labelled rows and columns, values in cells.
std::string SourceTaskMatrixSvg(const SourceTaskMatrix& matrix, const std::string& title);

}  // namespace tda
