// Estimates KroneckerFactors for a model on a training set: one streaming pass for the
// covariances A and S, eigendecomposition, and a second pass for the EK-FAC eigenvalue
// correction. Memory does not grow with the data set size. The pieces of the second pass
// (CaptureForFit, AddEigenCorrection, FinishEigenCorrection) are public so that the index
// build can fuse it with its gradient pass (index/fused_gradient_pass.h).
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "common/progress.h"
#include "curvature/ekfac.h"
#include "data/dataset.h"
#include "data/row_source.h"
#include "distributed/collective.h"
#include "grad/projection.h"
#include "model/model.h"
#include "model/sampled_capture.h"

namespace tda {

enum class FisherKind {
  kTrue,       // labels sampled from the model's predictive distribution (default)
  kEmpirical,  // the data set's own labels
};

struct FitOptions {
  FisherKind fisher = FisherKind::kTrue;
  int64_t max_examples = 100000;  // at most N samples, spread over the data (FitWindowStarts)
  int64_t batch_size = 512;
  uint64_t seed = 0;              // label sampling
};

// Rows are captured in windows of this many rows (documents are ordered by length within a
// window, so a batch cut to its longest document is mostly not padding): one batch of images,
// or 8 batches of documents. Factor fitting and the gradient pass share this order, so a fused
// pass sees the fit's batches.
int64_t CaptureWindowRows(const RowSource& data, int64_t batch_size);
// Rows [begin, end) (begin a multiple of the window) in capture order: window by window from
// `begin`, each window ordered by length (stable; the identity for classification).
std::vector<int64_t> CaptureOrder(const RowSource& data, int64_t begin, int64_t end,
                                  int64_t batch_size);

// The first row of each capture window a fit reads. It reads n = min(max_examples, rows) rows:
// every row when n is all of them, else ceil(n / window) windows spread evenly over the data
// (window floor(j * windows / chosen), never the data's short last one), each read whole but
// the last, of which its first n - (chosen - 1) x window rows. Spread rather than the first n
// rows so that a corpus stored source by source (the fortunes, category by category; JSONL
// files one after another) is sampled across its sources.
std::vector<int64_t> FitWindowStarts(const RowSource& data, const FitOptions& options);

// With a `projection` (LoGra), the factors are those of the projected "virtual" layers
// (ProjectCaptureSides): factors.layout is projection->projected_layout(), so they precondition
// projected gradients. Without one, the model's own layout.
// The rows of FitWindowStarts are read batch by batch (twice), window by window in
// CaptureOrder: memory does not grow with the number of rows beyond 8 bytes a row.
// With a `collective` of several ranks (a data-parallel build), each rank captures a contiguous
// slice of the batches (the same batches, labels and seeds as one process) and the sums are
// all-reduced in float64 after each pass: every rank returns the same factors, equal to the
// single-process ones up to the order of the additions.
[[nodiscard]] absl::StatusOr<KroneckerFactors> FitKroneckerFactors(
    const Model& model, const RowSource& data, const FitOptions& options,
    const ProgressFn& progress = {}, const Projection* projection = nullptr,
    Collective* collective = nullptr);
[[nodiscard]] absl::StatusOr<KroneckerFactors> FitKroneckerFactors(
    const Model& model, const Dataset& data, const FitOptions& options,
    const ProgressFn& progress = {}, const Projection* projection = nullptr);

// Pass 1 alone: the covariances A and S, normalised and eigendecomposed (q_a, lambda_a, q_s,
// lambda_s), `corrected` zero and `examples` set: what AddEigenCorrection adds to.
[[nodiscard]] absl::StatusOr<KroneckerFactors> FitCovariances(
    const Model& model, const RowSource& data, const FitOptions& options,
    const ProgressFn& progress = {}, const Projection* projection = nullptr,
    Collective* collective = nullptr);

// The capture factor fitting takes of `batch`, the rows at positions [begin, begin + rows) of
// the whole data's CaptureOrder (the position seeds the sampled labels: the same labels in
// every pass, on every rank and in the fused gradient pass): labels per options.fisher, checked,
// and projected when `projection` is given (then in projection->projected_layout()). With `own`
// (true Fisher only), the same forward also gives own->layers[l].g for the batch's own labels
// (projected likewise; a left empty with 0 rows: the returned capture's a are the inputs of both).
[[nodiscard]] absl::StatusOr<BatchCapture> CaptureForFit(const Model& model, const Batch& batch,
                                                         const FitOptions& options, int64_t begin,
                                                         const Projection* projection,
                                                         BatchCapture* own = nullptr);

// Adds one batch's eigenvalue-correction terms sum_i (Q_S^T G_i Q_A)^2 to factors->corrected:
// `capture` from CaptureForFit in factors->layout, `rows` the data row of each of its samples.
void AddEigenCorrection(const BatchCapture& capture, const RowSource& data, const int64_t* rows,
                        KroneckerFactors* factors);
// After every batch of every rank: sums the corrections over the ranks (float64 all-reduce)
// and divides by factors->examples.
[[nodiscard]] absl::Status FinishEigenCorrection(KroneckerFactors* factors,
                                                 Collective* collective);

// Labels drawn from each row of `probabilities` (rows x classes) with a seeded generator.
std::vector<int32_t> SampleLabels(const Eigen::MatrixXf& probabilities, uint64_t seed);

}  // namespace tda
