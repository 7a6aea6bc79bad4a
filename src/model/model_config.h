// Model architecture and training recipe, saved beside the weights as JSON (config.json) so that
// a model directory says how it was built and how to train it again (ablations retrain from it).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "data/jsonl_corpus.h"

namespace tda {

struct ModelConfig {
  std::string kind = "mlp";         // mlp | gpt
  int64_t input_dim = 784;          // mlp: features per input; gpt: unused (0)
  std::vector<int64_t> hidden = {128};  // mlp only
  int64_t num_classes = 10;         // mlp: classes; gpt: vocabulary size (kByteVocabulary)
  std::string activation = "relu";  // mlp only: relu | tanh
  // gpt only (see gpt.cc): a decoder-only transformer over byte tokens.
  int64_t context_length = 0;  // positions (input tokens) per sequence
  int64_t d_model = 0;
  int64_t layers = 0;
  int64_t heads = 0;           // d_model % heads == 0
  int64_t mlp_width = 0;       // hidden width of each block's MLP (GPT-2: 4 d_model)
  bool tied_head = true;       // head = wte^T (not tracked) or its own tracked Linear

  bool is_sequence() const { return kind == "gpt"; }
};

// A gpt config over byte tokens with the given shape (num_classes = vocabulary size).
ModelConfig GptConfig(int64_t context_length, int64_t d_model, int64_t layers, int64_t heads,
                      int64_t mlp_width, bool tied_head);

struct TrainRecipe {
  std::string optimizer = "adam";  // adam | sgd | adamw
  double learning_rate = 1e-3;     // peak learning rate when a schedule is used
  double momentum = 0.9;           // sgd only
  double weight_decay = 0.0;       // adam/sgd: L2 coefficient on all parameters; adamw: decoupled
                                   // decay of weight matrices (not biases, LayerNorm, positions)
  std::string schedule = "constant";  // constant | cosine (linear warmup, cosine decay to 10%)
  int64_t warmup_steps = 0;        // cosine only
  double clip_norm = 0.0;          // global gradient-norm clipping; 0 = off
  int64_t epochs = 3;
  int64_t batch_size = 128;
  uint64_t seed = 0;
  int64_t train_size = 0;          // first N training samples; 0 = all
  std::string data_dir;            // where the training data came from (jsonl: the files,
                                   // comma-separated)
  std::string dataset;             // "" (Fashion-MNIST), "fortunes" or "jsonl"
  JsonlOptions jsonl;              // jsonl: field names and options (paths: from data_dir)
  std::string corpus_hash;         // jsonl: CorpusHash of the files the model was trained on
  int64_t truncated = 0;           // sequences: training documents cut at the context length
  int64_t chunk_stride = 0;        // sequences: long documents become windows this many tokens
                                   // apart (data/chunking.h); 0 = cut at the context (models
                                   // trained before chunking)
  double held_out_fraction = 0.05;  // fortunes: fraction of documents held out by id hash
};

// config.json holds {"model": ..., "recipe": ...}.
std::string ModelConfigToJson(const ModelConfig& config, const TrainRecipe& recipe);
absl::Status ModelConfigFromJson(const std::string& text, const std::string& source,
                                 ModelConfig* config, TrainRecipe* recipe);
absl::Status ValidateModelConfig(const ModelConfig& config);

}  // namespace tda
