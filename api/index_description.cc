#include "api/index_description.h"

#include <fstream>
#include <sstream>
#include <string>

#include "model/hf_checkpoint.h"
#include "model/model_config.h"

namespace tda {

namespace {

// The recipe saved beside the served model, if readable.
bool ReadRecipe(const std::string& index_dir, TrainRecipe* recipe) {
  const std::string path = index_dir + "/model/config.json";
  std::ifstream in(path);
  if (!in) return false;
  std::stringstream text;
  text << in.rdbuf();
  ModelConfig config;
  return ModelConfigFromJson(text.str(), path, &config, recipe).ok();
}

}  // namespace

v1::DescribeIndexResponse DescribeAttributor(const Attributor& attributor) {
  const GradientIndex& index = attributor.index();
  const Manifest& manifest = index.manifest();
  v1::DescribeIndexResponse out;
  out.set_format_version(manifest.format_version);
  out.set_rows(manifest.rows);
  out.set_dim(manifest.dim);
  out.set_dtype(manifest.dtype);
  out.set_dataset(manifest.dataset);
  out.set_data_dir(manifest.data_dir);
  const int64_t dtype_bytes = manifest.dtype == "f32" ? 4 : 2;
  out.set_gradient_bytes(manifest.rows * manifest.dim * dtype_bytes * attributor.ensemble_size());
  out.set_ensemble_size(static_cast<int32_t>(attributor.ensemble_size()));
  out.set_deleted_rows(attributor.index().deleted_rows());
  out.set_adam_correction(attributor.index().manifest().adam_correction);

  v1::Projection* projection = out.mutable_projection();
  projection->set_kind(manifest.projection_kind);
  projection->set_dim_per_side(manifest.projection_dim_per_side);
  projection->set_seed(manifest.projection_seed);
  projection->mutable_layer_dims()->Add(manifest.layer_dims.begin(), manifest.layer_dims.end());

  const Model& model = attributor.model();
  const ModelConfig& config = model.config();
  v1::ModelInfo* info = out.mutable_model();
  info->set_fingerprint(manifest.model_fingerprint);
  info->set_kind(config.kind);
  info->set_input_dim(config.input_dim);
  info->mutable_hidden()->Add(config.hidden.begin(), config.hidden.end());
  info->set_num_classes(config.num_classes);
  info->set_activation(config.activation);
  for (const TrackedLayer& layer : model.layout().layers) {
    v1::Layer* l = info->add_layers();
    l->set_name(layer.name);
    l->set_out(layer.out);
    l->set_in(layer.in);
    l->set_has_bias(layer.has_bias);
  }
  info->set_parameters(model.layout().total());
  info->set_weights_dtype(HeldMatrixDType(model));
  TrainRecipe recipe;
  if (ReadRecipe(index.dir(), &recipe)) {
    v1::TrainingRecipe* r = info->mutable_recipe();
    r->set_optimizer(recipe.optimizer);
    r->set_learning_rate(recipe.learning_rate);
    r->set_weight_decay(recipe.weight_decay);
    r->set_epochs(recipe.epochs);
    r->set_batch_size(recipe.batch_size);
    r->set_seed(recipe.seed);
    r->set_train_size(recipe.train_size);
  }

  v1::FactorsInfo* factors = out.mutable_factors();
  factors->set_fisher(manifest.fisher);
  factors->set_examples(manifest.factor_examples);
  factors->set_default_relative_damping(Damping{}.relative);

  for (const std::string& name : attributor.class_names()) out.add_class_names(name);
  for (v1::Method m : {v1::METHOD_EKFAC, v1::METHOD_KFAC, v1::METHOD_GRADIENT_DOT}) {
    out.add_methods(m);
  }
  if (manifest.projection_dim_per_side == 0) {  // full gradients: LiSSA and exact work too
    out.add_methods(v1::METHOD_LISSA);
    out.add_methods(v1::METHOD_EXACT);
  }
  return out;
}

}  // namespace tda
