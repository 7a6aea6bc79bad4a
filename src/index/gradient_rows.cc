#include "index/gradient_rows.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "data/byte_tokenizer.h"

namespace tda {

absl::Status WriteGradientRows(const Model& model, const Projection& projection,
                               const Dataset& data, int64_t batch_size, IndexWriter* writer,
                               const ProgressFn& progress) {
  if (batch_size <= 0) return absl::InvalidArgumentError("batch size must be > 0");
  const int64_t n = data.size();
  // Documents are captured in batches of similar length (sorted within windows of 8 batches;
  // the model cuts each batch to its longest document) and written back in data order.
  const int64_t window = data.is_sequence() ? 8 * batch_size : batch_size;
  for (int64_t begin = 0; begin < n; begin += window) {
    const int64_t rows = std::min(window, n - begin);
    RowMatrixXf projected;
    if (!data.is_sequence()) {
      ASSIGN_OR_RETURN(BatchCapture capture, model.Capture(data.Rows(begin, begin + rows)));
      projected = projection.ProjectCapture(capture);
    } else {
      const std::vector<int64_t> order = OrderByLength(data, begin, begin + rows);
      const Dataset sorted = data.Select(order);
      projected.resize(rows, projection.output_dim());
      for (int64_t b = 0; b < rows; b += batch_size) {
        const int64_t count = std::min(batch_size, rows - b);
        ASSIGN_OR_RETURN(BatchCapture capture, model.Capture(sorted.Rows(b, b + count)));
        const RowMatrixXf part = projection.ProjectCapture(capture);
        for (int64_t k = 0; k < count; ++k) projected.row(order[b + k] - begin) = part.row(k);
        ReportProgress(progress, "gradients", begin + b + count, n);
      }
    }
    std::vector<SampleRecord> samples;
    samples.reserve(static_cast<size_t>(rows));
    for (int64_t i = begin; i < begin + rows; ++i) {
      if (data.is_sequence()) {  // documents: no label, a preview of the text
        samples.push_back({data.ids[i], data.sources[i], -1,
                           i < static_cast<int64_t>(data.previews.size())
                               ? OneLinePreview(data.previews[i])
                               : std::string()});
        continue;
      }
      const int32_t label = data.labels[i];
      samples.push_back({data.ids[i], data.sources[i], label,
                         label >= 0 && label < static_cast<int32_t>(data.class_names.size())
                             ? data.class_names[label]
                             : absl::StrCat("class ", label)});
    }
    RETURN_IF_ERROR(writer->AppendRows(projected.data(), samples));
    ReportProgress(progress, "gradients", begin + rows, n);
  }
  return absl::OkStatus();
}

}  // namespace tda
