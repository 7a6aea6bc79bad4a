// Changing an index in place, since data sets change: deleting rows (tombstones) and appending
// rows for new samples, without a rebuild. Both write new files under new names, then a new
// manifest atomically (generation + 1), and only then remove the files the old manifest listed
// and the new one does not. A crash at any point leaves either the old or the new index.
//
// Deleted rows keep their row numbers (and their bytes in the shards); readers score them NaN
// and never rank or sum them (docs/index_format.md, "Deleted rows"). Appended rows are the
// projected gradients of the index's own model with the index's projection, exactly what a
// full build would store for those samples; the curvature factors are kept as they were
// fitted (the manifest's curvature.factor_examples says on how many samples).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/progress.h"
#include "data/dataset.h"

namespace tda {

// Marks the rows of `ids` deleted. kInvalidArgument (nothing written) for an id the index does
// not hold, or no ids; ids already deleted are accepted and stay deleted. The index is opened
// with full verification first, so a damaged index is refused (kDataLoss) rather than changed.
[[nodiscard]] absl::Status DeleteFromIndex(const std::string& dir,
                                           const std::vector<std::string>& ids);

// Appends one row per sample of `data` (batches of `batch_size`). kInvalidArgument when a
// sample id is already in the index (deleted or not: ids stay unique) or the data does not fit
// the model; kDataLoss when the index's model does not match its manifest's fingerprint.
[[nodiscard]] absl::Status AppendToIndex(const std::string& dir, const Dataset& data,
                                         int64_t batch_size = 512,
                                         const ProgressFn& progress = {});

}  // namespace tda
