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

// Rows are captured in windows of this many rows (documents are sorted by length within a
// window): one batch of images, or 8 batches of documents. A row's gradient depends only on the
// window it is in, so slices that start at a multiple of it give bit-identical rows.
int64_t GradientWindowRows(const RowSource& data, int64_t batch_size);

// Streams rows [first_row, end_row) of `data` (end_row -1: to the end; first_row a multiple of
// GradientWindowRows) through the model in batches of `batch_size` (> 0), and appends each
// window's projected gradients and sample records to `writer`.
// Progress: ("gradients", done, total) over the slice.
[[nodiscard]] absl::Status WriteGradientRows(const Model& model, const Projection& projection,
                                             const RowSource& data, int64_t batch_size,
                                             IndexWriter* writer, const ProgressFn& progress,
                                             int64_t first_row = 0, int64_t end_row = -1);
[[nodiscard]] absl::Status WriteGradientRows(const Model& model, const Projection& projection,
                                             const Dataset& data, int64_t batch_size,
                                             IndexWriter* writer, const ProgressFn& progress);

}  // namespace tda
