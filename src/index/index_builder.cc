#include "index/index_builder.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "curvature/ekfac.h"
#include "data/dataset_rows.h"
#include "grad/projection.h"
#include "index/fused_gradient_pass.h"
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
                        const IndexBuildOptions& options, const ProgressFn& progress,
                        Collective* collective) {
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
  ASSIGN_OR_RETURN(std::shared_ptr<const AdamCorrection> correction,
                   LoadAdamCorrection(options.model_dir, *model,
                                      options.adam_correction
                                          ? AdamCorrectionKindFor(options.projection_dim_per_side)
                                          : AdamCorrectionKind::kNone));
  const Projection projection(model->layout(), options.projection_dim_per_side,
                              options.projection_seed, correction);
  const int rank = collective == nullptr ? 0 : collective->rank();
  const int ranks = collective == nullptr ? 1 : collective->size();
  const RankRows mine = RowsOfRank(train, batch_size, options.rows_per_shard, rank, ranks);
  std::unique_ptr<IndexWriter> writer;
  if (rank == 0) {
    // Create first: it invalidates any index already in out_dir until Finish writes a manifest.
    ASSIGN_OR_RETURN(writer, IndexWriter::Create(options.out_dir, projection.output_dim(),
                                                 options.rows_per_shard, options.dtype));
    RETURN_IF_ERROR(model->Save(options.out_dir + "/model", recipe));
    if (correction != nullptr) {
      RETURN_IF_ERROR(SaveOptimizerState(options.out_dir + "/model", *model, correction->state()));
    }
  }
  // The other ranks write only once rank 0 has cleared the directory.
  if (collective != nullptr) RETURN_IF_ERROR(collective->AllGather("").status());
  if (rank > 0) {
    ASSIGN_OR_RETURN(writer, IndexWriter::Create(options.out_dir, projection.output_dim(),
                                                 options.rows_per_shard, options.dtype,
                                                 {rank, mine.first_row, mine.first_shard}));
  }

  KroneckerFactors factors;
  if (options.fused_pass && CanFuseGradientPass(train, fit, batch_size)) {
    ASSIGN_OR_RETURN(factors,
                     FitCovariances(*model, train, fit, progress, &projection, collective));
    RETURN_IF_ERROR(WriteGradientRowsAndCorrection(*model, projection, train, fit, batch_size,
                                                   &factors, writer.get(), progress,
                                                   mine.first_row, mine.end_row, collective));
    if (rank == 0) RETURN_IF_ERROR(SaveFactors(factors, options.out_dir + "/factors.safetensors"));
  } else {
    ASSIGN_OR_RETURN(factors,
                     FitKroneckerFactors(*model, train, fit, progress, &projection, collective));
    if (rank == 0) RETURN_IF_ERROR(SaveFactors(factors, options.out_dir + "/factors.safetensors"));
    RETURN_IF_ERROR(WriteGradientRows(*model, projection, train, batch_size, writer.get(),
                                      progress, mine.first_row, mine.end_row));
  }
  if (rank > 0) {
    // Report this part; then learn whether rank 0 published the index.
    ASSIGN_OR_RETURN(IndexPartSummary part, writer->FinishPart());
    RETURN_IF_ERROR(collective->AllGather(IndexPartSummaryToText(part)).status());
    ASSIGN_OR_RETURN(std::vector<std::string> outcome, collective->AllGather(""));
    if (!outcome[0].empty()) {
      return absl::AbortedError(absl::StrCat("rank 0 did not publish the index: ", outcome[0]));
    }
    return absl::OkStatus();
  }
  std::vector<IndexPartSummary> parts;
  if (collective != nullptr) {
    ASSIGN_OR_RETURN(std::vector<std::string> reports, collective->AllGather(""));
    for (int r = 1; r < ranks; ++r) {
      ASSIGN_OR_RETURN(IndexPartSummary part,
                       IndexPartSummaryFromText(reports[r], absl::StrCat("rank ", r, "'s report")));
      parts.push_back(std::move(part));
    }
  }
  Manifest manifest;
  manifest.model_fingerprint = model->Fingerprint();
  manifest.dataset = train.name();
  manifest.data_dir = data_dir;
  manifest.projection_dim_per_side = options.projection_dim_per_side;
  manifest.projection_seed = options.projection_seed;
  manifest.layer_dims = projection.layer_output_dims();
  if (correction != nullptr) manifest.adam_correction = AdamCorrectionKindName(correction->kind());
  manifest.fisher = factors.fisher;
  manifest.factor_examples = factors.examples;
  absl::Status finished = writer->Finish(std::move(manifest), parts);
  if (collective != nullptr) {
    const std::string outcome = finished.ok() ? "" : finished.ToString();
    RETURN_IF_ERROR(collective->AllGather(outcome).status());
  }
  return finished;
}

RankRows RowsOfRank(const RowSource& train, int64_t batch_size, int64_t rows_per_shard, int rank,
                    int ranks) {
  const int64_t window = GradientWindowRows(train, batch_size);
  const int64_t windows = (train.size() + window - 1) / window;
  RankRows rows;
  for (int r = 0; r <= rank; ++r) {
    const auto [first, end] = RankSlice(windows, r, ranks);
    rows.first_row = std::min(train.size(), first * window);
    rows.end_row = std::min(train.size(), end * window);
    if (r < rank) {
      rows.first_shard += (rows.end_row - rows.first_row + rows_per_shard - 1) / rows_per_shard;
    }
  }
  return rows;
}

}  // namespace tda
