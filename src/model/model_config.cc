#include "model/model_config.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "data/byte_tokenizer.h"
#include "data/tokenizer.h"
#include "data/tokenizer_files.h"

namespace tda {
namespace {
using json = nlohmann::json;
constexpr int64_t kMaxVocabulary = 1 << 22;
constexpr int64_t kMaxContext = 1 << 20;
}  // namespace

ModelConfig GptConfig(int64_t context_length, int64_t d_model, int64_t layers, int64_t heads,
                      int64_t mlp_width, bool tied_head) {
  ModelConfig config;
  config.kind = "gpt";
  config.input_dim = 0;
  config.hidden.clear();
  config.num_classes = kByteVocabulary;
  config.context_length = context_length;
  config.d_model = d_model;
  config.layers = layers;
  config.heads = heads;
  config.mlp_width = mlp_width;
  config.tied_head = tied_head;
  return config;
}

TrainRecipe FortunesAdamWRecipe() {
  TrainRecipe r;
  r.optimizer = "adamw";
  r.schedule = "cosine";
  r.learning_rate = 3e-3;
  r.weight_decay = 0.1;
  r.clip_norm = 1.0;
  r.dataset = "fortunes";
  return r;
}

ModelConfig LlamaConfig(int64_t vocabulary, int64_t context_length, int64_t d_model, int64_t layers,
                        int64_t heads, int64_t kv_heads, int64_t mlp_width, bool tied_head) {
  ModelConfig config = GptConfig(context_length, d_model, layers, heads, mlp_width, tied_head);
  config.kind = "llama";
  config.num_classes = vocabulary;
  config.kv_heads = kv_heads;
  config.hf_model_type = "llama";
  return config;
}

std::string ModelConfigToJson(const ModelConfig& config, const TrainRecipe& recipe) {
  json model = {{"kind", config.kind}};
  if (config.is_sequence()) {
    model["vocab_size"] = config.num_classes;
    model["context_length"] = config.context_length;
    model["d_model"] = config.d_model;
    model["layers"] = config.layers;
    model["heads"] = config.heads;
    model["mlp_width"] = config.mlp_width;
    model["tied_head"] = config.tied_head;
    if (config.kind == "llama") {
      model["kv_heads"] = config.kv_heads;
      model["rms_norm_eps"] = config.rms_norm_eps;
      model["rope_theta"] = config.rope_theta;
      model["qkv_bias"] = config.qkv_bias;
      model["o_bias"] = config.o_bias;
      model["hf_model_type"] = config.hf_model_type;
      if (config.rope_scaling.factor != 0) {
        model["rope_scaling"] = {{"factor", config.rope_scaling.factor},
                                 {"low_freq_factor", config.rope_scaling.low_freq_factor},
                                 {"high_freq_factor", config.rope_scaling.high_freq_factor},
                                 {"original_max_position_embeddings",
                                  config.rope_scaling.original_max_position_embeddings}};
      }
    }
  } else {
    model["input_dim"] = config.input_dim;
    model["hidden"] = config.hidden;
    model["num_classes"] = config.num_classes;
    model["activation"] = config.activation;
    if (config.dropout != 0) model["dropout"] = config.dropout;
  }
  json out = {
      {"model", model},
      {"recipe",
       {{"optimizer", recipe.optimizer},
        {"learning_rate", recipe.learning_rate},
        {"momentum", recipe.momentum},
        {"weight_decay", recipe.weight_decay},
        {"epochs", recipe.epochs},
        {"batch_size", recipe.batch_size},
        {"seed", recipe.seed},
        {"train_size", recipe.train_size},
        {"data_dir", recipe.data_dir},
        {"schedule", recipe.schedule},
        {"warmup_steps", recipe.warmup_steps},
        {"clip_norm", recipe.clip_norm},
        {"dataset", recipe.dataset},
        {"truncated", recipe.truncated},
        {"chunk_stride", recipe.chunk_stride},
        {"held_out_fraction", recipe.held_out_fraction}}},
  };
  if (recipe.dataset == "jsonl") {
    out["recipe"]["jsonl"] = {{"text_field", recipe.jsonl.text_field},
                              {"prompt_field", recipe.jsonl.prompt_field},
                              {"completion_field", recipe.jsonl.completion_field},
                              {"id_field", recipe.jsonl.id_field},
                              {"source_field", recipe.jsonl.source_field},
                              {"source_from_file", recipe.jsonl.source_from_file},
                              {"skip_bad_lines", recipe.jsonl.skip_bad_lines}};
    out["recipe"]["corpus_hash"] = recipe.corpus_hash;
  }
  if (!recipe.tokenizer_fingerprint.empty()) {
    out["recipe"]["tokenizer"] = {{"name", recipe.tokenizer_name},
                                  {"fingerprint", recipe.tokenizer_fingerprint}};
  }
  if (!recipe.init_model.empty()) {
    out["recipe"]["init"] = {{"model", recipe.init_model},
                             {"fingerprint", recipe.init_fingerprint}};
  }
  return out.dump(2) + "\n";
}

absl::Status ModelConfigFromJson(const std::string& text, const std::string& source,
                                 ModelConfig* config, TrainRecipe* recipe) {
  json in = json::parse(text, nullptr, /*allow_exceptions=*/false);
  auto bad = [&source](const std::string& what) {
    return absl::DataLossError(absl::StrCat("model config ", source, ": ", what));
  };
  if (in.is_discarded() || !in.is_object() || !in.contains("model") || !in["model"].is_object()) {
    return bad("not a JSON object with a \"model\" entry");
  }
  const json& m = in["model"];
  try {
    config->kind = m.at("kind").get<std::string>();
    if (config->kind == "gpt") {
      *config = GptConfig(m.at("context_length").get<int64_t>(), m.at("d_model").get<int64_t>(),
                          m.at("layers").get<int64_t>(), m.at("heads").get<int64_t>(),
                          m.at("mlp_width").get<int64_t>(), m.at("tied_head").get<bool>());
      config->num_classes = m.at("vocab_size").get<int64_t>();
    } else if (config->kind == "llama") {
      *config =
          LlamaConfig(m.at("vocab_size").get<int64_t>(), m.at("context_length").get<int64_t>(),
                      m.at("d_model").get<int64_t>(), m.at("layers").get<int64_t>(),
                      m.at("heads").get<int64_t>(), m.at("kv_heads").get<int64_t>(),
                      m.at("mlp_width").get<int64_t>(), m.at("tied_head").get<bool>());
      config->rms_norm_eps = m.at("rms_norm_eps").get<double>();
      config->rope_theta = m.at("rope_theta").get<double>();
      config->qkv_bias = m.at("qkv_bias").get<bool>();
      config->o_bias = m.at("o_bias").get<bool>();
      config->hf_model_type = m.at("hf_model_type").get<std::string>();
      if (m.contains("rope_scaling")) {
        const json& r = m["rope_scaling"];
        config->rope_scaling.factor = r.at("factor").get<double>();
        config->rope_scaling.low_freq_factor = r.at("low_freq_factor").get<double>();
        config->rope_scaling.high_freq_factor = r.at("high_freq_factor").get<double>();
        config->rope_scaling.original_max_position_embeddings =
            r.at("original_max_position_embeddings").get<int64_t>();
      }
    } else {
      config->input_dim = m.at("input_dim").get<int64_t>();
      config->hidden = m.at("hidden").get<std::vector<int64_t>>();
      config->num_classes = m.at("num_classes").get<int64_t>();
      config->activation = m.value("activation", std::string("relu"));
      config->dropout = m.value("dropout", 0.0);
    }
    if (recipe != nullptr && in.contains("recipe")) {
      const json& r = in["recipe"];
      recipe->optimizer = r.at("optimizer").get<std::string>();
      recipe->learning_rate = r.at("learning_rate").get<double>();
      recipe->momentum = r.value("momentum", 0.9);
      recipe->weight_decay = r.at("weight_decay").get<double>();
      recipe->epochs = r.at("epochs").get<int64_t>();
      recipe->batch_size = r.at("batch_size").get<int64_t>();
      recipe->seed = r.at("seed").get<uint64_t>();
      recipe->train_size = r.at("train_size").get<int64_t>();
      recipe->data_dir = r.value("data_dir", std::string());
      recipe->schedule = r.value("schedule", std::string("constant"));
      recipe->warmup_steps = r.value("warmup_steps", int64_t{0});
      recipe->clip_norm = r.value("clip_norm", 0.0);
      recipe->dataset = r.value("dataset", std::string());
      recipe->truncated = r.value("truncated", int64_t{0});
      recipe->chunk_stride = r.value("chunk_stride", int64_t{0});
      recipe->held_out_fraction = r.value("held_out_fraction", 0.05);
      if (r.contains("jsonl")) {
        const json& j = r["jsonl"];
        recipe->jsonl.text_field = j.at("text_field").get<std::string>();
        recipe->jsonl.prompt_field = j.at("prompt_field").get<std::string>();
        recipe->jsonl.completion_field = j.at("completion_field").get<std::string>();
        recipe->jsonl.id_field = j.at("id_field").get<std::string>();
        recipe->jsonl.source_field = j.at("source_field").get<std::string>();
        recipe->jsonl.source_from_file = j.at("source_from_file").get<bool>();
        recipe->jsonl.skip_bad_lines = j.at("skip_bad_lines").get<bool>();
      }
      recipe->corpus_hash = r.value("corpus_hash", std::string());
      if (r.contains("tokenizer")) {
        recipe->tokenizer_name = r["tokenizer"].at("name").get<std::string>();
        recipe->tokenizer_fingerprint = r["tokenizer"].at("fingerprint").get<std::string>();
      }
      if (r.contains("init")) {
        recipe->init_model = r["init"].at("model").get<std::string>();
        recipe->init_fingerprint = r["init"].at("fingerprint").get<std::string>();
      }
    }
  } catch (const json::exception& e) {
    return bad(e.what());
  }
  absl::Status valid = ValidateModelConfig(*config);
  if (!valid.ok()) return bad(std::string(valid.message()));
  return absl::OkStatus();
}

absl::Status AttachModelTokenizer(const std::string& dir, TrainRecipe* recipe) {
  ASSIGN_OR_RETURN(const TokenizerFiles files, FindTokenizerFiles(dir));
  ASSIGN_OR_RETURN(const std::string fingerprint, TokenizerFingerprint(files));
  if (!recipe->tokenizer_fingerprint.empty() && fingerprint != recipe->tokenizer_fingerprint) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the model in ", dir, " was trained with tokenizer ", recipe->tokenizer_name,
        " (files fingerprint ", recipe->tokenizer_fingerprint, "), but its tokenizer files ",
        files.empty() ? "are missing" : absl::StrCat("have fingerprint ", fingerprint),
        ": restore the tokenizer files the model was saved with"));
  }
  if (files.empty()) return absl::OkStatus();
  recipe->tokenizer_path = dir;
  if (recipe->tokenizer_fingerprint.empty()) {
    ASSIGN_OR_RETURN(const std::unique_ptr<Tokenizer> tokenizer, LoadTokenizerFiles(files));
    recipe->tokenizer_name = tokenizer->name();
    recipe->tokenizer_fingerprint = fingerprint;
  }
  return absl::OkStatus();
}

absl::Status SaveRecipeTokenizer(const TrainRecipe& recipe, const std::string& dir) {
  if (recipe.tokenizer_path.empty() || recipe.tokenizer_path == dir) return absl::OkStatus();
  ASSIGN_OR_RETURN(const TokenizerFiles files, FindTokenizerFiles(recipe.tokenizer_path));
  ASSIGN_OR_RETURN(const std::string fingerprint, TokenizerFingerprint(files));
  if (fingerprint != recipe.tokenizer_fingerprint) {
    return absl::FailedPreconditionError(
        absl::StrCat("the tokenizer files at ", recipe.tokenizer_path, " (fingerprint ",
                     fingerprint, ") are not the ones the recipe records (",
                     recipe.tokenizer_fingerprint, "); they changed while in use"));
  }
  return CopyTokenizerFiles(files, dir);
}

// The shape checks gpt and llama share, `kind` naming the model in messages.
absl::Status ValidateDecoderShape(const ModelConfig& config) {
  const std::string& kind = config.kind;
  if (config.num_classes < 2 || config.num_classes > kMaxVocabulary) {
    return absl::InvalidArgumentError(absl::StrCat(kind, " vocabulary must be in [2, ",
                                                   kMaxVocabulary, "], got ", config.num_classes));
  }
  if (config.context_length <= 0 || config.context_length > kMaxContext) {
    return absl::InvalidArgumentError(absl::StrCat(kind, " context_length must be in [1, ",
                                                   kMaxContext, "], got ", config.context_length));
  }
  for (int64_t v : {config.d_model, config.layers, config.heads, config.mlp_width}) {
    if (v <= 0 || v > 65536) {
      return absl::InvalidArgumentError(absl::StrCat(
          kind, " d_model, layers, heads and mlp_width must be in [1, 65536], got ", config.d_model,
          ", ", config.layers, ", ", config.heads, ", ", config.mlp_width));
    }
  }
  if (config.d_model % config.heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat(kind, " d_model ", config.d_model,
                                                   " is not a multiple of heads ", config.heads));
  }
  return absl::OkStatus();
}

absl::Status ValidateLlamaConfig(const ModelConfig& config) {
  if (absl::Status s = ValidateDecoderShape(config); !s.ok()) return s;
  if (config.kv_heads <= 0 || config.kv_heads > config.heads ||
      config.heads % config.kv_heads != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("llama kv_heads ", config.kv_heads, " must divide heads ", config.heads));
  }
  if ((config.d_model / config.heads) % 2 != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "llama head dimension ", config.d_model / config.heads, " must be even (rotary pairs)"));
  }
  if (!(config.rms_norm_eps > 0) || !(config.rope_theta > 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("llama rms_norm_eps must be > 0 and rope_theta > 1, got ", config.rms_norm_eps,
                     " and ", config.rope_theta));
  }
  const RopeScaling& r = config.rope_scaling;
  if (r.factor != 0 &&
      !(r.factor >= 1 && r.low_freq_factor > 0 && r.high_freq_factor > r.low_freq_factor &&
        r.original_max_position_embeddings > 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "llama3 rope_scaling needs factor >= 1, 0 < low_freq_factor < high_freq_factor and "
        "original_max_position_embeddings > 0, got ",
        r.factor, ", ", r.low_freq_factor, ", ", r.high_freq_factor, ", ",
        r.original_max_position_embeddings));
  }
  if (config.hf_model_type != "llama" && config.hf_model_type != "mistral" &&
      config.hf_model_type != "qwen2") {
    return absl::InvalidArgumentError(absl::StrCat("llama hf_model_type '", config.hf_model_type,
                                                   "' is not llama, mistral or qwen2"));
  }
  return absl::OkStatus();
}

absl::Status ValidateModelConfig(const ModelConfig& config) {
  if (config.kind == "gpt") return ValidateDecoderShape(config);
  if (config.kind == "llama") return ValidateLlamaConfig(config);
  if (config.kind != "mlp") {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown model kind '", config.kind, "' (known: mlp, gpt, llama)"));
  }
  if (config.input_dim <= 0 || config.num_classes < 2) {
    return absl::InvalidArgumentError(absl::StrCat("input_dim must be > 0 and num_classes >= 2, got ",
                                                   config.input_dim, " and ", config.num_classes));
  }
  for (int64_t h : config.hidden) {
    if (h <= 0 || h > 65536) {
      return absl::InvalidArgumentError(absl::StrCat("hidden layer width ", h, " is not in [1, 65536]"));
    }
  }
  if (config.activation != "relu" && config.activation != "tanh") {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown activation '", config.activation, "' (known: relu, tanh)"));
  }
  if (!(config.dropout >= 0 && config.dropout < 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("dropout ", config.dropout,
                     " is not in [0, 1): it is the probability of zeroing a "
                     "hidden activation in training"));
  }
  return absl::OkStatus();
}

}  // namespace tda
