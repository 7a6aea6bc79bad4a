#include "index/index_builder.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "curvature/ekfac.h"
#include "grad/projection.h"
#include "index/index_writer.h"
#include "model/model.h"

namespace tda {

absl::Status BuildIndex(const Dataset& train, const std::string& data_dir,
                        const IndexBuildOptions& options, const ProgressFn& progress) {
  if (options.projection_dim_per_side < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("projection dimension must be >= 0, got ", options.projection_dim_per_side));
  }
  if (options.batch_size <= 0) return absl::InvalidArgumentError("batch size must be > 0");
  if (train.size() == 0) return absl::InvalidArgumentError("training set is empty");
  TrainRecipe recipe;
  ASSIGN_OR_RETURN(std::unique_ptr<Model> model, LoadModel(options.model_dir, &recipe));
  if (train.feature_dim != model->config().input_dim) {
    return absl::InvalidArgumentError(absl::StrCat("training data has ", train.feature_dim,
                                                   " features, model expects ",
                                                   model->config().input_dim));
  }
  const Projection projection(model->layout(), options.projection_dim_per_side,
                              options.projection_seed);
  // Create first: it invalidates any index already in out_dir until Finish writes a manifest.
  ASSIGN_OR_RETURN(std::unique_ptr<IndexWriter> writer,
                   IndexWriter::Create(options.out_dir, projection.output_dim(),
                                       options.rows_per_shard, options.dtype));
  RETURN_IF_ERROR(model->Save(options.out_dir + "/model", recipe));

  ASSIGN_OR_RETURN(KroneckerFactors factors,
                   FitKroneckerFactors(*model, train, options.fit, progress, &projection));
  RETURN_IF_ERROR(SaveFactors(factors, options.out_dir + "/factors.safetensors"));

  const int64_t n = train.size();
  for (int64_t begin = 0; begin < n; begin += options.batch_size) {
    const int64_t rows = std::min(options.batch_size, n - begin);
    ASSIGN_OR_RETURN(BatchCapture capture,
                     model->Capture(train.row(begin), train.labels.data() + begin, rows));
    RowMatrixXf projected = projection.ProjectCapture(capture);
    std::vector<SampleRecord> samples;
    samples.reserve(static_cast<size_t>(rows));
    for (int64_t i = begin; i < begin + rows; ++i) {
      const int32_t label = train.labels[i];
      samples.push_back({train.ids[i], train.sources[i], label,
                         label >= 0 && label < static_cast<int32_t>(train.class_names.size())
                             ? train.class_names[label]
                             : absl::StrCat("class ", label)});
    }
    RETURN_IF_ERROR(writer->AppendRows(projected.data(), samples));
    ReportProgress(progress, "gradients", begin + rows, n);
  }

  Manifest manifest;
  manifest.model_fingerprint = model->Fingerprint();
  manifest.dataset = train.name;
  manifest.data_dir = data_dir;
  manifest.projection_dim_per_side = options.projection_dim_per_side;
  manifest.projection_seed = options.projection_seed;
  manifest.layer_dims = projection.layer_output_dims();
  manifest.fisher = factors.fisher;
  manifest.factor_examples = factors.examples;
  return writer->Finish(std::move(manifest));
}

}  // namespace tda
