// The rows of a gradient index: for each sample of a data set, the model's per-sample training
// gradient projected into the index's subspace, with the sample's metadata. Shared by the
// index build and by appends to an existing index, so that both write the same rows.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "common/progress.h"
#include "data/dataset.h"
#include "data/row_source.h"
#include "grad/projection.h"
#include "index/index_writer.h"
#include "model/model.h"

namespace tda {

// Streams `data` through the model in batches of `batch_size` (> 0), reading 8 batches of rows
// at a time, and appends each batch's projected gradients and sample records to `writer`.
// Progress: ("gradients", done, total).
[[nodiscard]] absl::Status WriteGradientRows(const Model& model, const Projection& projection,
                                             const RowSource& data, int64_t batch_size,
                                             IndexWriter* writer, const ProgressFn& progress);
[[nodiscard]] absl::Status WriteGradientRows(const Model& model, const Projection& projection,
                                             const Dataset& data, int64_t batch_size,
                                             IndexWriter* writer, const ProgressFn& progress);

}  // namespace tda
