#include "index/index_builder.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "curvature/ekfac.h"
#include "data/dataset_rows.h"
#include "grad/projection.h"
#include "index/gradient_rows.h"
#include "index/index_writer.h"
#include "model/model.h"

namespace tda {

int64_t DefaultBatchSize(const ModelConfig& config) { return config.is_sequence() ? 32 : 512; }

absl::Status BuildIndex(const Dataset& train, const std::string& data_dir,
                        const IndexBuildOptions& options, const ProgressFn& progress) {
  return BuildIndex(DatasetRows(train), data_dir, options, progress);
}

absl::Status BuildIndex(const RowSource& train, const std::string& data_dir,
                        const IndexBuildOptions& options, const ProgressFn& progress) {
  if (options.projection_dim_per_side < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("projection dimension must be >= 0, got ", options.projection_dim_per_side));
  }
  if (options.batch_size < 0) return absl::InvalidArgumentError("batch size must be >= 0");
  if (train.size() == 0) return absl::InvalidArgumentError("training set is empty");
  TrainRecipe recipe;
  ASSIGN_OR_RETURN(std::unique_ptr<Model> model, LoadModel(options.model_dir, &recipe));
  RETURN_IF_ERROR(CheckDataFitsModel(train, model->config(), "index build"));
  const int64_t batch_size =
      options.batch_size > 0 ? options.batch_size : DefaultBatchSize(model->config());
  FitOptions fit = options.fit;
  if (fit.batch_size <= 0) fit.batch_size = batch_size;
  const Projection projection(model->layout(), options.projection_dim_per_side,
                              options.projection_seed);
  // Create first: it invalidates any index already in out_dir until Finish writes a manifest.
  ASSIGN_OR_RETURN(std::unique_ptr<IndexWriter> writer,
                   IndexWriter::Create(options.out_dir, projection.output_dim(),
                                       options.rows_per_shard, options.dtype));
  RETURN_IF_ERROR(model->Save(options.out_dir + "/model", recipe));

  ASSIGN_OR_RETURN(KroneckerFactors factors,
                   FitKroneckerFactors(*model, train, fit, progress, &projection));
  RETURN_IF_ERROR(SaveFactors(factors, options.out_dir + "/factors.safetensors"));

  RETURN_IF_ERROR(
      WriteGradientRows(*model, projection, train, batch_size, writer.get(), progress));

  Manifest manifest;
  manifest.model_fingerprint = model->Fingerprint();
  manifest.dataset = train.name();
  manifest.data_dir = data_dir;
  manifest.projection_dim_per_side = options.projection_dim_per_side;
  manifest.projection_seed = options.projection_seed;
  manifest.layer_dims = projection.layer_output_dims();
  manifest.fisher = factors.fisher;
  manifest.factor_examples = factors.examples;
  return writer->Finish(std::move(manifest));
}

}  // namespace tda
