#include "model/model_config.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"

namespace tda {
namespace {
using json = nlohmann::json;
}  // namespace

std::string ModelConfigToJson(const ModelConfig& config, const TrainRecipe& recipe) {
  json out = {
      {"model",
       {{"kind", config.kind},
        {"input_dim", config.input_dim},
        {"hidden", config.hidden},
        {"num_classes", config.num_classes},
        {"activation", config.activation}}},
      {"recipe",
       {{"optimizer", recipe.optimizer},
        {"learning_rate", recipe.learning_rate},
        {"momentum", recipe.momentum},
        {"weight_decay", recipe.weight_decay},
        {"epochs", recipe.epochs},
        {"batch_size", recipe.batch_size},
        {"seed", recipe.seed},
        {"train_size", recipe.train_size},
        {"data_dir", recipe.data_dir}}},
  };
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
    config->input_dim = m.at("input_dim").get<int64_t>();
    config->hidden = m.at("hidden").get<std::vector<int64_t>>();
    config->num_classes = m.at("num_classes").get<int64_t>();
    config->activation = m.value("activation", std::string("relu"));
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
    }
  } catch (const json::exception& e) {
    return bad(e.what());
  }
  absl::Status valid = ValidateModelConfig(*config);
  if (!valid.ok()) return bad(std::string(valid.message()));
  return absl::OkStatus();
}

absl::Status ValidateModelConfig(const ModelConfig& config) {
  if (config.kind != "mlp") {
    return absl::InvalidArgumentError(absl::StrCat("unknown model kind '", config.kind, "' (known: mlp)"));
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
  return absl::OkStatus();
}

}  // namespace tda
