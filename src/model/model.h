// A model tda can attribute: an architecture built from tracked layers (see param_layout.h),
// implemented in C++ on LibTorch behind this torch-free interface.
//
// Thread-safety: the const methods may be called concurrently (Capture uses autograd.grad
// with respect to layer outputs, never accumulating into parameter .grad). SetParameters
// and training require exclusive access.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <Eigen/Core>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "data/batch.h"
#include "data/dataset.h"
#include "data/dataset_rows.h"
#include "model/layer_capture.h"
#include "model/model_config.h"
#include "model/param_layout.h"

namespace tda {

// Which curvature of the loss a curvature-vector product uses. For softmax cross-entropy the
// Gauss-Newton matrix J^T (diag(p) - p p^T) J equals the true Fisher; the Hessian adds the
// second-order terms of the network (it can be indefinite for non-linear models).
enum class Curvature { kHessian, kGaussNewton };

const char* CurvatureName(Curvature kind);  // "hessian", "gauss-newton"

class Model {
 public:
  virtual ~Model() = default;

  virtual const ModelConfig& config() const = 0;
  virtual const ParamLayout& layout() const = 0;

  // Output probabilities, (rows * positions) x num_classes, row r * positions + t for row r at
  // position t: class probabilities for a classifier (positions = 1), next-token
  // probabilities for a sequence model. Reads only the batch's inputs.
  [[nodiscard]] virtual absl::StatusOr<Eigen::MatrixXf> Predict(const Batch& batch) const = 0;

  // Forward and backward pass of the sum over the batch of each row's loss: records a and g of
  // every tracked layer and the per-sample losses. A row's loss is the cross-entropy of its
  // label (classifier) or the SUM of the cross-entropies of its targets >= 0 (sequences).
  // kInvalidArgument for labels/targets out of range, non-finite inputs or the wrong shape.
  [[nodiscard]] virtual absl::StatusOr<BatchCapture> Capture(const Batch& batch) const = 0;

  // Curvature-matrix products of the MEAN per-row loss over the batch, in float64:
  //   out = (1/rows) sum_i C_i v      for every column v of `vectors` (D x K, ParamLayout order),
  // where C_i is sample i's Hessian or Gauss-Newton matrix with respect to all tracked
  // parameters. No weight-decay term is included: callers add it as damping (lambda I).
  // Computed with double backward (Hessian) or the R-op via a double backward through a dummy
  // output gradient (Gauss-Newton); never touches parameter .grad, so it is thread-safe.
  // kInvalidArgument for bad labels/inputs or a row count of `vectors` other than D.
  // The default implementation returns kUnimplemented.
  [[nodiscard]] virtual absl::StatusOr<Eigen::MatrixXd> CurvatureProduct(const Batch& batch,
                                                           const Eigen::MatrixXd& vectors,
                                                           Curvature kind) const;

  // One vector: CurvatureProduct with K = 1.
  [[nodiscard]] absl::StatusOr<Eigen::VectorXd> CurvatureVectorProduct(const Batch& batch,
                                                         const Eigen::VectorXd& v,
                                                         Curvature kind) const;

  // All tracked parameters as one flat vector in ParamLayout order, and back.
  virtual Eigen::VectorXf Parameters() const = 0;
  [[nodiscard]] virtual absl::Status SetParameters(const Eigen::VectorXf& flat) = 0;

  // XXH3 of the weights: ties an index to the exact model that produced it.
  virtual std::string Fingerprint() const = 0;

  // Writes model.safetensors (PyTorch-style names, e.g. layers.0.weight; GPT-2 names for the
  // gpt kind) and config.json.
  [[nodiscard]] virtual absl::Status Save(const std::string& dir, const TrainRecipe& recipe) const = 0;
};

// kInvalidArgument unless `data` holds the inputs `config` takes: feature vectors of
// config.input_dim for a classifier, token sequences for a sequence model. `what` names the
// caller in the message.
[[nodiscard]] absl::Status CheckDataFitsModel(const RowSource& data, const ModelConfig& config,
                                              const std::string& what);
[[nodiscard]] inline absl::Status CheckDataFitsModel(const Dataset& data,
                                                     const ModelConfig& config,
                                                     const std::string& what) {
  return CheckDataFitsModel(DatasetRows(data), config, what);
}

// A freshly initialised model (PyTorch's default Linear initialisation, seeded).
[[nodiscard]] absl::StatusOr<std::unique_ptr<Model>> CreateModel(const ModelConfig& config, uint64_t seed);

// Loads a directory written by Model::Save; `recipe` (optional) receives the saved recipe.
[[nodiscard]] absl::StatusOr<std::unique_ptr<Model>> LoadModel(const std::string& dir, TrainRecipe* recipe = nullptr);

}  // namespace tda

namespace tda {

// Sets LibTorch's intra-op threads to `threads` (0 = OMP_NUM_THREADS if set, else all cores),
// OpenBLAS to run on its calling threads (no threads of its own beside OpenMP's) and glibc's
// allocator to keep freed tensor memory for reuse. LibTorch defaults to 1 thread on this
// platform; every binary calls this once at start.
void InitCompute(int threads = 0);

}  // namespace tda
