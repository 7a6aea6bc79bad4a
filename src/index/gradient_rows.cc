#include "index/gradient_rows.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "data/byte_tokenizer.h"
#include "data/dataset_rows.h"

namespace tda {

absl::Status WriteGradientRows(const Model& model, const Projection& projection,
                               const RowSource& data, int64_t batch_size, IndexWriter* writer,
                               const ProgressFn& progress) {
  if (batch_size <= 0) return absl::InvalidArgumentError("batch size must be > 0");
  const int64_t n = data.size();
  const std::vector<std::string>& class_names = data.class_names();
  // Documents are captured in batches of similar length (sorted within windows of 8 batches;
  // the model cuts each batch to its longest document) and written back in data order.
  const int64_t window = data.is_sequence() ? 8 * batch_size : batch_size;
  RowStorage storage;
  for (int64_t begin = 0; begin < n; begin += window) {
    const int64_t rows = std::min(window, n - begin);
    RowMatrixXf projected;
    if (!data.is_sequence()) {
      ASSIGN_OR_RETURN(BatchCapture capture,
                       model.Capture(data.Read(begin, begin + rows, &storage)));
      projected = projection.ProjectCapture(capture);
    } else {
      const std::vector<int64_t> order = OrderByLength(data, begin, begin + rows);
      projected.resize(rows, projection.output_dim());
      for (int64_t b = 0; b < rows; b += batch_size) {
        const int64_t count = std::min(batch_size, rows - b);
        ASSIGN_OR_RETURN(BatchCapture capture,
                         model.Capture(data.Gather(order.data() + b, count, &storage)));
        const RowMatrixXf part = projection.ProjectCapture(capture);
        for (int64_t k = 0; k < count; ++k) projected.row(order[b + k] - begin) = part.row(k);
        ReportProgress(progress, "gradients", begin + b + count, n);
      }
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
    ReportProgress(progress, "gradients", begin + rows, n);
  }
  return absl::OkStatus();
}

absl::Status WriteGradientRows(const Model& model, const Projection& projection,
                               const Dataset& data, int64_t batch_size, IndexWriter* writer,
                               const ProgressFn& progress) {
  return WriteGradientRows(model, projection, DatasetRows(data), batch_size, writer, progress);
}

}  // namespace tda
