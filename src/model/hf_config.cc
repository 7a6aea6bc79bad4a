#include "model/hf_config.h"

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"

namespace tda {
namespace {

using json = nlohmann::json;

constexpr char kSupported[] = "llama, mistral, qwen2, gpt2";

// Reads config.json keys with their types checked; the first problem is kept and named.
class Keys {
 public:
  Keys(const json& root, const std::string& source) : root_(root), source_(source) {}

  int64_t Int(const char* key) {
    if (!root_.contains(key) || !root_[key].is_number_integer()) {
      Fail(absl::StrCat("needs the integer key \"", key, "\""));
      return 0;
    }
    return root_[key].get<int64_t>();
  }
  int64_t Int(const char* key, int64_t fallback) { return IsUnset(key) ? fallback : Int(key); }
  double Number(const char* key, double fallback) {
    if (IsUnset(key)) return fallback;
    if (!root_[key].is_number()) {
      Fail(absl::StrCat("\"", key, "\" is not a number"));
      return fallback;
    }
    return root_[key].get<double>();
  }
  bool Bool(const char* key, bool fallback) {
    if (IsUnset(key)) return fallback;
    if (!root_[key].is_boolean()) {
      Fail(absl::StrCat("\"", key, "\" is not true or false"));
      return fallback;
    }
    return root_[key].get<bool>();
  }
  std::string String(const char* key, const std::string& fallback) {
    if (IsUnset(key)) return fallback;
    if (!root_[key].is_string()) {
      Fail(absl::StrCat("\"", key, "\" is not a string"));
      return fallback;
    }
    return root_[key].get<std::string>();
  }
  bool IsUnset(const char* key) const { return !root_.contains(key) || root_[key].is_null(); }
  void Fail(const std::string& what) {
    if (status_.ok()) {
      status_ = absl::InvalidArgumentError(absl::StrCat(source_, ": ", what));
    }
  }
  const absl::Status& status() const { return status_; }

 private:
  const json& root_;
  const std::string source_;
  absl::Status status_;
};

void ReadRopeScaling(const json& root, Keys& keys, ModelConfig* config) {
  if (keys.IsUnset("rope_scaling")) return;
  const json& r = root["rope_scaling"];
  if (!r.is_object()) return keys.Fail("\"rope_scaling\" is not an object");
  Keys scaling(r, "rope_scaling");
  const std::string type = scaling.String("rope_type", scaling.String("type", ""));
  if (type == "default") return;
  if (type != "llama3") {
    return keys.Fail(absl::StrCat("rope_scaling type '", type,
                                  "' is not supported (supported: llama3, default)"));
  }
  config->rope_scaling.factor = scaling.Number("factor", 0);
  config->rope_scaling.low_freq_factor = scaling.Number("low_freq_factor", 0);
  config->rope_scaling.high_freq_factor = scaling.Number("high_freq_factor", 0);
  config->rope_scaling.original_max_position_embeddings =
      scaling.Int("original_max_position_embeddings");
  if (!scaling.status().ok()) keys.Fail(std::string(scaling.status().message()));
}

ModelConfig ReadLlama(const json& root, const std::string& model_type, Keys& keys) {
  const int64_t heads = keys.Int("num_attention_heads");
  ModelConfig config = LlamaConfig(
      keys.Int("vocab_size"), keys.Int("max_position_embeddings"), keys.Int("hidden_size"),
      keys.Int("num_hidden_layers"), heads, keys.Int("num_key_value_heads", heads),
      keys.Int("intermediate_size"), keys.Bool("tie_word_embeddings", false));
  config.hf_model_type = model_type;
  config.rms_norm_eps = keys.Number("rms_norm_eps", 1e-6);
  config.rope_theta = keys.Number("rope_theta", 10000);
  if (model_type == "qwen2") {
    config.qkv_bias = true;
  } else {
    config.qkv_bias = config.o_bias = keys.Bool("attention_bias", false);
  }
  ReadRopeScaling(root, keys, &config);
  if (const std::string act = keys.String("hidden_act", "silu"); act != "silu") {
    keys.Fail(absl::StrCat("hidden_act '", act, "' is not supported (only silu)"));
  }
  if (keys.Bool("mlp_bias", false)) keys.Fail("mlp_bias true is not supported");
  if (!keys.IsUnset("head_dim") && heads > 0 && keys.Int("head_dim") != config.d_model / heads) {
    keys.Fail(absl::StrCat("head_dim ", keys.Int("head_dim"),
                           " differs from hidden_size / "
                           "num_attention_heads = ",
                           config.d_model / heads, "; not supported"));
  }
  const bool sliding = model_type == "qwen2" ? keys.Bool("use_sliding_window", false)
                                             : !keys.IsUnset("sliding_window");
  if (sliding && keys.Int("sliding_window", 0) < config.context_length) {
    keys.Fail(absl::StrCat("sliding_window ", keys.Int("sliding_window", 0),
                           " (sliding-window attention) is not supported"));
  }
  return config;
}

ModelConfig ReadGpt2(Keys& keys) {
  const int64_t width = keys.Int("n_embd");
  ModelConfig config =
      GptConfig(keys.Int("n_positions"), width, keys.Int("n_layer"), keys.Int("n_head"),
                keys.Int("n_inner", 4 * width), keys.Bool("tie_word_embeddings", true));
  config.num_classes = keys.Int("vocab_size");
  if (const std::string act = keys.String("activation_function", "gelu_new"); act != "gelu_new") {
    keys.Fail(absl::StrCat("activation_function '", act, "' is not supported (only gelu_new)"));
  }
  if (const double eps = keys.Number("layer_norm_epsilon", 1e-5); std::abs(eps - 1e-5) > 1e-12) {
    keys.Fail(absl::StrCat("layer_norm_epsilon ", eps, " is not supported (only 1e-05)"));
  }
  return config;
}

}  // namespace

absl::StatusOr<ModelConfig> ModelConfigFromHfJson(const std::string& text,
                                                  const std::string& source) {
  const json root = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": not a JSON object"));
  }
  Keys keys(root, source);
  const std::string model_type = keys.String("model_type", "");
  if (!keys.status().ok()) return keys.status();
  ModelConfig config;
  if (model_type == "llama" || model_type == "mistral" || model_type == "qwen2") {
    config = ReadLlama(root, model_type, keys);
  } else if (model_type == "gpt2") {
    config = ReadGpt2(keys);
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": model_type '", model_type, "' is not supported (supported: ", kSupported, ")"));
  }
  if (!keys.status().ok()) return keys.status();
  if (absl::Status valid = ValidateModelConfig(config); !valid.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", valid.message()));
  }
  return config;
}

std::string HfJsonFromModelConfig(const ModelConfig& config) {
  json out;
  if (config.kind == "gpt") {
    out = {{"model_type", "gpt2"},
           {"architectures", json::array({"GPT2LMHeadModel"})},
           {"vocab_size", config.num_classes},
           {"n_positions", config.context_length},
           {"n_embd", config.d_model},
           {"n_layer", config.layers},
           {"n_head", config.heads},
           {"n_inner", config.mlp_width},
           {"activation_function", "gelu_new"},
           {"layer_norm_epsilon", 1e-5},
           {"tie_word_embeddings", config.tied_head}};
  } else {
    static const std::map<std::string, std::string> kArchitectures = {
        {"llama", "LlamaForCausalLM"},
        {"mistral", "MistralForCausalLM"},
        {"qwen2", "Qwen2ForCausalLM"}};
    out = {{"model_type", config.hf_model_type},
           {"architectures", json::array({kArchitectures.at(config.hf_model_type)})},
           {"vocab_size", config.num_classes},
           {"max_position_embeddings", config.context_length},
           {"hidden_size", config.d_model},
           {"intermediate_size", config.mlp_width},
           {"num_hidden_layers", config.layers},
           {"num_attention_heads", config.heads},
           {"num_key_value_heads", config.kv_heads},
           {"hidden_act", "silu"},
           {"rms_norm_eps", config.rms_norm_eps},
           {"rope_theta", config.rope_theta},
           {"tie_word_embeddings", config.tied_head},
           {"rope_scaling", nullptr}};
    if (config.hf_model_type == "llama") out["attention_bias"] = config.qkv_bias;
    if (config.hf_model_type == "mistral") out["sliding_window"] = nullptr;
    if (config.rope_scaling.factor != 0) {
      out["rope_scaling"] = {{"rope_type", "llama3"},
                             {"factor", config.rope_scaling.factor},
                             {"low_freq_factor", config.rope_scaling.low_freq_factor},
                             {"high_freq_factor", config.rope_scaling.high_freq_factor},
                             {"original_max_position_embeddings",
                              config.rope_scaling.original_max_position_embeddings}};
    }
  }
  out["torch_dtype"] = "float32";
  return out.dump(2) + "\n";
}

}  // namespace tda
