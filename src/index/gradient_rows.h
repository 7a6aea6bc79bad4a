// The rows of a gradient index: for each sample of a data set, the model's per-sample training
// gradient projected into the index's subspace, with the sample's metadata. Shared by the
// index build and by appends to an existing index, so that both write the same rows.
#pragma once

#include <cstdint>
#include <functional>

#include "absl/status/status.h"
#include "common/progress.h"
#include "data/dataset.h"
#include "data/row_source.h"
#include "grad/projection.h"
#include "index/index_writer.h"
#include "model/model.h"

namespace tda {

// Rows are captured in windows of CaptureWindowRows (curvature/factor_fitting.h; documents are
// sorted by length within a window). A row's gradient depends only on the window it is in, so
// slices that start at a multiple of it give bit-identical rows.
int64_t GradientWindowRows(const RowSource& data, int64_t batch_size);

// Captures one batch for its rows: `batch` holds data rows rows[0..count) at positions
// [begin, begin + count) of CaptureOrder; returns the capture sides of their own labels in the
// projected layout (Projection::ProjectCaptureSides). Empty: model.Capture, then project.
using RowCaptureFn = std::function<absl::StatusOr<BatchCapture>(
    const Batch& batch, int64_t begin, const int64_t* rows)>;

// Streams rows [first_row, end_row) of `data` (end_row -1: to the end; first_row a multiple of
// GradientWindowRows) through the model in batches of `batch_size` (> 0) in CaptureOrder, and
// appends each window's projected gradients and sample records to `writer` in data order.
// Progress: ("gradients", done, total) over the slice.
[[nodiscard]] absl::Status WriteGradientRows(const Model& model, const Projection& projection,
                                             const RowSource& data, int64_t batch_size,
                                             IndexWriter* writer, const ProgressFn& progress,
                                             int64_t first_row = 0, int64_t end_row = -1,
                                             const RowCaptureFn& capture = {});
[[nodiscard]] absl::Status WriteGradientRows(const Model& model, const Projection& projection,
                                             const Dataset& data, int64_t batch_size,
                                             IndexWriter* writer, const ProgressFn& progress);

}  // namespace tda
