// The presets of `tda eval lds | loo --protocol P --model M`: data sizes, model, training
// recipe and LDS subsets, kept as one small table (eval_protocol.cc) so that a protocol is
// written down in one place. Explicit flags (or job fields) override a preset field by field.
//
//   tda     tda's own settings (the defaults of `tda eval` before presets): 14x14 images,
//           N = 1000, Adam; mlp = 196-16-10, lr = 196-10.
//   dattri  the dattri benchmark's MNIST settings (TRAIS-Lab/dattri, benchmark/datasets/mnist
//           and scripts/dattri_retrain.py), run on Fashion-MNIST: 28x28 images, the first
//           5,000 training images, 500 test images as queries; lr = 784-10 trained by SGD
//           (lr 0.01, no momentum) for 20 epochs, mlp = 784-128-64-10 with dropout 0.1 by SGD
//           (lr 0.01, momentum 0.9) for 50 epochs; batch 32, no weight decay; 50 subsets of
//           alpha 0.5 (dattri ships 50; its retrain_lds defaults to 100: --subsets 100).
//           Where tda differs: pixels are scaled to [0, 1] (dattri normalises by MNIST's mean
//           and deviation), and leave-one-out converges L2-regularised logistic regression
//           (weight decay 0.01) by Newton-CG and retrains without 40 samples for one query,
//           where dattri retrains SGD runs without each sample for all queries: an SGD run
//           without one sample differs from the full run by less than its seed noise.
#pragma once

#include <cstdint>
#include <string>

#include "ablation/lds.h"
#include "absl/status/statusor.h"
#include "model/model_config.h"

namespace tda {

struct EvalSetup {
  std::string model;       // "lr" | "mlp": the preset's name of the architecture
  int64_t train_size = 0;  // first N training samples
  int64_t queries = 0;     // first Q test samples (LDS queries; LOO picks one of them)
  int64_t side = 28;       // Fashion-MNIST images downsampled to side x side
  ModelConfig config;      // an mlp; input_dim and num_classes follow the data
  TrainRecipe recipe;      // of the model and of every retraining
  LdsOptions lds;          // LDS only
  int64_t ensemble = 1;    // LDS only: models (seeds seed..seed+E-1) whose mean score is scored
  bool unit_norm = false;  // LDS only: TrackStar's unit normalisation (MethodSettings::unit_norm)
};

// The preset of `protocol` ("tda" | "dattri") for `experiment` ("lds" | "loo") and `model`
// ("lr" | "mlp"). kInvalidArgument naming the known values otherwise (dattri's LOO is
// defined for lr only).
[[nodiscard]] absl::StatusOr<EvalSetup> ProtocolSetup(const std::string& protocol,
                                                      const std::string& experiment,
                                                      const std::string& model);

// One line per preset of `experiment`, for --help.
std::string DescribeProtocols(const std::string& experiment);

}  // namespace tda
