// Model architecture and training recipe, saved beside the weights as JSON (config.json) so that
// a model directory says how it was built and how to train it again (ablations retrain from it).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace tda {

struct ModelConfig {
  std::string kind = "mlp";
  int64_t input_dim = 784;
  std::vector<int64_t> hidden = {128};
  int64_t num_classes = 10;
  std::string activation = "relu";  // relu | tanh
};

struct TrainRecipe {
  std::string optimizer = "adam";  // adam | sgd
  double learning_rate = 1e-3;
  double momentum = 0.9;           // sgd only
  double weight_decay = 0.0;       // L2 coefficient on all parameters
  int64_t epochs = 3;
  int64_t batch_size = 128;
  uint64_t seed = 0;
  int64_t train_size = 0;          // first N training samples; 0 = all
  std::string data_dir;            // where the training data came from
};

// config.json holds {"model": ..., "recipe": ...}.
std::string ModelConfigToJson(const ModelConfig& config, const TrainRecipe& recipe);
absl::Status ModelConfigFromJson(const std::string& text, const std::string& source,
                                 ModelConfig* config, TrainRecipe* recipe);
absl::Status ValidateModelConfig(const ModelConfig& config);

}  // namespace tda
