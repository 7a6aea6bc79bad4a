#include "index/gradient_rows.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "curvature/factor_fitting.h"
#include "data/byte_tokenizer.h"
#include "data/dataset_rows.h"
#include "grad/per_sample_gradients.h"

namespace tda {

int64_t GradientWindowRows(const RowSource& data, int64_t batch_size) {
  return CaptureWindowRows(data, batch_size);
}

absl::Status WriteGradientRows(const Model& model, const Projection& projection,
                               const RowSource& data, int64_t batch_size, IndexWriter* writer,
                               const ProgressFn& progress, int64_t first_row, int64_t end_row,
                               const RowCaptureFn& capture) {
  if (batch_size <= 0) return absl::InvalidArgumentError("batch size must be > 0");
  const int64_t n = end_row < 0 ? data.size() : std::min(end_row, data.size());
  const std::vector<std::string>& class_names = data.class_names();
  // Documents are captured in batches of similar length (sorted within windows of 8 batches;
  // the model cuts each batch to its longest document) and written back in data order.
  const int64_t window = GradientWindowRows(data, batch_size);
  if (first_row < 0 || (first_row % window != 0 && first_row < n)) {
    return absl::InvalidArgumentError(
        absl::StrCat("first row ", first_row, " is not a multiple of the window ", window));
  }
  RowStorage storage;
  auto report = [&](int64_t done) {
    ReportProgress(progress, "gradients", done - first_row, n - first_row);
  };
  auto own_capture = [&](const Batch& batch) -> absl::StatusOr<BatchCapture> {
    ASSIGN_OR_RETURN(BatchCapture c, model.Capture(batch));
    return projection.ProjectCaptureSides(c);
  };
  for (int64_t begin = first_row; begin < n; begin += window) {
    const int64_t rows = std::min(window, n - begin);
    const std::vector<int64_t> order = CaptureOrder(data, begin, begin + rows, batch_size);
    RowMatrixXf projected(rows, projection.output_dim());
    for (int64_t b = 0; b < rows; b += batch_size) {
      const int64_t count = std::min(batch_size, rows - b);
      const Batch batch = GatherCut(data, order.data() + b, count, &storage);
      ASSIGN_OR_RETURN(BatchCapture sides, capture ? capture(batch, begin + b, order.data() + b)
                                                   : own_capture(batch));
      const RowMatrixXf part = projection.RowsFromProjectedSides(sides);
      for (int64_t k = 0; k < count; ++k) projected.row(order[b + k] - begin) = part.row(k);
      if (data.is_sequence()) report(begin + b + count);
    }
    std::vector<SampleRecord> samples;
    samples.reserve(static_cast<size_t>(rows));
    for (int64_t i = begin; i < begin + rows; ++i) {
      if (data.is_sequence()) {  // documents: no label, a preview of the text
        samples.push_back({data.id(i), data.source(i), -1, OneLinePreview(data.preview(i))});
        continue;
      }
      const int32_t label = data.label(i);
      samples.push_back({data.id(i), data.source(i), label,
                         label >= 0 && label < static_cast<int32_t>(class_names.size())
                             ? class_names[label]
                             : absl::StrCat("class ", label)});
    }
    RETURN_IF_ERROR(writer->AppendRows(projected.data(), samples));
    report(begin + rows);
  }
  return absl::OkStatus();
}

absl::Status WriteGradientRows(const Model& model, const Projection& projection,
                               const Dataset& data, int64_t batch_size, IndexWriter* writer,
                               const ProgressFn& progress) {
  return WriteGradientRows(model, projection, DatasetRows(data), batch_size, writer, progress);
}

}  // namespace tda
