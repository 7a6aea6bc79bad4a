// Builds a gradient index for a trained model: copies the model into DIR/model, fits EK-FAC
// factors in the projected space (one pass for covariances), then streams the training set once
// more to compute the eigenvalue corrections and write projected per-sample gradients from the
// same forward passes (index/fused_gradient_pass.h), with progress. When the fit's batches are
// not the gradient pass's (CanFuseGradientPass), or with fused_pass false, the corrections take
// a pass of their own (three passes; the same factors and rows). Memory does not grow with the number of rows. One process, or the ranks of a
// data-parallel job (distributed/world.h).
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "common/progress.h"
#include "curvature/factor_fitting.h"
#include "data/dataset.h"
#include "data/row_source.h"
#include "distributed/collective.h"
#include "index/row_dtype.h"
#include "model/model_config.h"

namespace tda {

struct IndexBuildOptions {
  std::string model_dir;
  std::string out_dir;
  int64_t projection_dim_per_side = 32;  // 0 = exact per-sample gradients
  uint64_t projection_seed = 0;
  FitOptions fit;  // fit.batch_size <= 0: batch_size
  int64_t batch_size = 0;  // samples per batch; 0 = DefaultBatchSize of the model
  int64_t rows_per_shard = 1 << 16;
  RowDType dtype = RowDType::kF32;  // how rows are stored: f32, or bf16 / f16 (half the bytes)
  // TrackStar's Adam correction of every gradient before projection (grad/adam_correction.h):
  // exact for projection dimension 0, rank-1 factorised otherwise. Needs the model's optimizer
  // state (kFailedPrecondition naming model_dir when it has none).
  bool adam_correction = false;
  bool fused_pass = true;  // false: a pass of its own for the eigenvalue corrections
};

// Samples per gradient batch when none is given: 512 images, or 32 documents (a document
// batch holds rows x context x vocabulary logits).
int64_t DefaultBatchSize(const ModelConfig& config);

// `train` must be the data set the model was trained on (its ids become the row ids). Its rows
// are read batch by batch (factor fitting, eigenvalue correction, gradient pass): a row source
// that does not hold the corpus (data/cached_text_rows.h) keeps the build's memory flat in N.
//
// With a `collective` of W > 1 ranks, every rank calls this with the same arguments: each
// captures a contiguous slice of the batches for the factors (sums all-reduced in float64) and
// writes the rows of its slice of the gradient windows as its own shards; rank 0 writes the
// model and the factors, and the manifest only after every rank has reported its shards and
// sample table with their checksums. The rows equal the single-process build's bit for bit; a
// rank that fails fails every rank, and no manifest is written.
[[nodiscard]] absl::Status BuildIndex(const RowSource& train, const std::string& data_dir,
                                      const IndexBuildOptions& options,
                                      const ProgressFn& progress = {},
                                      Collective* collective = nullptr);
// The rows rank `rank` of `ranks` writes (whole gradient windows, in rank order) and the
// number of its first shard file.
struct RankRows {
  int64_t first_row = 0;
  int64_t end_row = 0;
  int64_t first_shard = 0;
};
RankRows RowsOfRank(const RowSource& train, int64_t batch_size, int64_t rows_per_shard, int rank,
                    int ranks);

[[nodiscard]] absl::Status BuildIndex(const Dataset& train, const std::string& data_dir,
                                      const IndexBuildOptions& options,
                                      const ProgressFn& progress = {});

}  // namespace tda
