// Model architecture and training recipe, saved beside the weights as JSON (config.json) so that
// a model directory says how it was built and how to train it again (ablations retrain from it).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "data/jsonl_corpus.h"

namespace tda {

// Llama 3's rescaling of the rotary frequencies (Hugging Face rope_scaling, rope_type "llama3");
// factor 0 = no rescaling.
struct RopeScaling {
  double factor = 0;
  double low_freq_factor = 0;
  double high_freq_factor = 0;
  int64_t original_max_position_embeddings = 0;
};

struct ModelConfig {
  std::string kind = "mlp";         // mlp | gpt | llama
  int64_t input_dim = 784;          // mlp: features per input; gpt: unused (0)
  std::vector<int64_t> hidden = {128};  // mlp only
  int64_t num_classes = 10;             // mlp: classes; gpt, llama: vocabulary size
  std::string activation = "relu";  // mlp only: relu | tanh
  // mlp only: probability of zeroing each hidden activation, in training only (inverted
  // dropout after every hidden layer); capture, attribution and evaluation run without it.
  // 0 = no dropout (models from before the field, bit-for-bit). In [0, 1).
  double dropout = 0;
  // gpt and llama (see gpt.cc, llama.cc): decoder-only transformers.
  int64_t context_length = 0;  // positions (input tokens) per sequence
  int64_t d_model = 0;
  int64_t layers = 0;
  int64_t heads = 0;           // d_model % heads == 0
  int64_t mlp_width = 0;       // hidden width of each block's MLP (GPT-2: 4 d_model)
  bool tied_head = true;       // head = wte^T (not tracked) or its own tracked Linear
  // llama only: grouped-query attention, RMSNorm, rotary positions, SwiGLU MLP.
  int64_t kv_heads = 0;  // key/value heads, dividing heads
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000;
  RopeScaling rope_scaling;
  bool qkv_bias = false;      // q, k, v projections have biases
  bool o_bias = false;        // the attention output projection has a bias
  std::string hf_model_type;  // llama | mistral | qwen2: the Hugging Face family it came from

  bool is_sequence() const { return kind == "gpt" || kind == "llama"; }
};

// A gpt config over byte tokens with the given shape (num_classes = vocabulary size).
ModelConfig GptConfig(int64_t context_length, int64_t d_model, int64_t layers, int64_t heads,
                      int64_t mlp_width, bool tied_head);

// A llama config (model_type llama, no biases, no rope scaling) with the given shape.
ModelConfig LlamaConfig(int64_t vocabulary, int64_t context_length, int64_t d_model, int64_t layers,
                        int64_t heads, int64_t kv_heads, int64_t mlp_width, bool tied_head);

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
  // Sequences: the tokenizer (data/tokenizer.h) whose files sit in the model directory: its
  // name and the TokenizerFingerprint of its files (checked wherever they are read); "" = the
  // byte tokenizer.
  std::string tokenizer_name;
  std::string tokenizer_fingerprint;
  // Not saved: where the tokenizer files are now (LoadModel: the model directory; tda train:
  // --tokenizer). Model::Save copies them beside the model.
  std::string tokenizer_path;
  // Fine-tuning (tda train --init): the model training started from and the Fingerprint of its
  // weights (checked when retraining); "" = a fresh, seeded initialisation.
  std::string init_model;
  std::string init_fingerprint;
};

// The AdamW recipe of tda's fortunes gpts (tda train --recipe, the gpt LDS preset, tests,
// benchmarks): cosine schedule, peak learning rate 3e-3, decoupled weight decay 0.1, gradient
// norm clipped at 1, data set "fortunes". Callers set epochs, batch size and warmup.
TrainRecipe FortunesAdamWRecipe();

// Fills the recipe's tokenizer from the files of model directory `dir`: tokenizer_path = dir
// when it holds tokenizer files (data/tokenizer_files.h), their fingerprint and name recorded
// when the recipe has none (a tda import --hf directory). kFailedPrecondition when the recipe
// records a tokenizer that the directory lacks or whose files differ.
[[nodiscard]] absl::Status AttachModelTokenizer(const std::string& dir, TrainRecipe* recipe);

// Copies the recipe's tokenizer files (from tokenizer_path) into model directory `dir`, after
// checking they still have the recorded fingerprint; nothing for the byte tokenizer.
[[nodiscard]] absl::Status SaveRecipeTokenizer(const TrainRecipe& recipe, const std::string& dir);

// config.json holds {"model": ..., "recipe": ...}.
std::string ModelConfigToJson(const ModelConfig& config, const TrainRecipe& recipe);
[[nodiscard]] absl::Status ModelConfigFromJson(const std::string& text, const std::string& source,
                                               ModelConfig* config, TrainRecipe* recipe);
[[nodiscard]] absl::Status ValidateModelConfig(const ModelConfig& config);

}  // namespace tda
