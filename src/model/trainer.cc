#include "model/trainer.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "model/torch_model.h"

namespace tda {
namespace {

absl::Status ValidateRecipe(const TrainRecipe& recipe) {
  if (recipe.optimizer != "adam" && recipe.optimizer != "sgd" && recipe.optimizer != "adamw") {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown optimizer '", recipe.optimizer, "' (known: adam, adamw, sgd)"));
  }
  if (recipe.schedule != "constant" && recipe.schedule != "cosine") {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown schedule '", recipe.schedule, "' (known: constant, cosine)"));
  }
  if (recipe.warmup_steps < 0 || !(recipe.clip_norm >= 0)) {
    return absl::InvalidArgumentError(absl::StrCat("warmup steps and clip norm must be >= 0, got ",
                                                   recipe.warmup_steps, " and ", recipe.clip_norm));
  }
  if (!(recipe.learning_rate > 0) || !std::isfinite(recipe.learning_rate)) {
    return absl::InvalidArgumentError(absl::StrCat("learning rate must be > 0, got ", recipe.learning_rate));
  }
  if (!(recipe.weight_decay >= 0)) {
    return absl::InvalidArgumentError(absl::StrCat("weight decay must be >= 0, got ", recipe.weight_decay));
  }
  if (recipe.epochs <= 0 || recipe.batch_size <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("epochs and batch size must be > 0, got ",
                                                   recipe.epochs, " and ", recipe.batch_size));
  }
  return absl::OkStatus();
}

std::unique_ptr<torch::optim::Optimizer> MakeOptimizer(const std::vector<torch::Tensor>& params,
                                                      const TrainRecipe& recipe) {
  if (recipe.optimizer == "adamw") {
    // Decoupled weight decay on weight matrices and embeddings only (not biases, LayerNorm).
    std::vector<torch::Tensor> decayed, plain;
    for (const torch::Tensor& p : params) (p.dim() >= 2 ? decayed : plain).push_back(p);
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.emplace_back(decayed, std::make_unique<torch::optim::AdamWOptions>(
                                     torch::optim::AdamWOptions(recipe.learning_rate)
                                         .betas({0.9, 0.95})
                                         .weight_decay(recipe.weight_decay)));
    groups.emplace_back(plain, std::make_unique<torch::optim::AdamWOptions>(
                                   torch::optim::AdamWOptions(recipe.learning_rate)
                                       .betas({0.9, 0.95})
                                       .weight_decay(0.0)));
    return std::make_unique<torch::optim::AdamW>(std::move(groups));
  }
  if (recipe.optimizer == "adam") {
    return std::make_unique<torch::optim::Adam>(
        params, torch::optim::AdamOptions(recipe.learning_rate).weight_decay(recipe.weight_decay));
  }
  return std::make_unique<torch::optim::SGD>(
      params, torch::optim::SGDOptions(recipe.learning_rate)
                  .momentum(recipe.momentum)
                  .weight_decay(recipe.weight_decay));
}

// The second moment of an Adam / AdamW run after its last step, over the tracked parameters in
// ParamLayout order; nullopt for SGD. Every tracked parameter is in one param group.
template <typename ParamState, typename Options>
absl::StatusOr<OptimizerState> SecondMoment(torch::optim::Optimizer& optimizer, TorchModel& model,
                                            const std::string& name) {
  const std::vector<torch::Tensor> tracked = model.TrackedParameters();
  OptimizerState state;
  state.optimizer = name;
  std::vector<torch::Tensor> moments;
  for (const torch::Tensor& p : tracked) {
    auto it = optimizer.state().find(c10::guts::to_string(p.unsafeGetTensorImpl()));
    if (it == optimizer.state().end()) {
      return absl::InternalError("a tracked parameter has no Adam state after training");
    }
    const auto& param_state = static_cast<const ParamState&>(*it->second);
    moments.push_back(param_state.exp_avg_sq());
    state.step = param_state.step();
  }
  for (const torch::optim::OptimizerParamGroup& group : optimizer.param_groups()) {
    const auto& options = static_cast<const Options&>(group.options());
    state.beta2 = std::get<1>(options.betas());
    state.eps = options.eps();
  }
  Eigen::VectorXd flat(model.layout().total());
  JoinFlat(model.layout(), moments, flat.data());
  state.exp_avg_sq = flat.cast<float>();  // float -> double -> float is exact
  return state;
}

absl::StatusOr<std::optional<OptimizerState>> FinalOptimizerState(
    torch::optim::Optimizer& optimizer, TorchModel& model, const TrainRecipe& recipe) {
  if (recipe.optimizer == "adam") {
    return SecondMoment<torch::optim::AdamParamState, torch::optim::AdamOptions>(optimizer, model,
                                                                                 "adam");
  }
  if (recipe.optimizer == "adamw") {
    return SecondMoment<torch::optim::AdamWParamState, torch::optim::AdamWOptions>(optimizer, model,
                                                                                   "adamw");
  }
  return std::optional<OptimizerState>();
}

// The learning rate of step `step` (0-based) of `total`: constant, or linear warmup then cosine
// decay to 10% of the peak.
double LearningRate(const TrainRecipe& recipe, int64_t step, int64_t total) {
  if (recipe.schedule != "cosine") return recipe.learning_rate;
  if (step < recipe.warmup_steps) {
    return recipe.learning_rate * static_cast<double>(step + 1) /
           static_cast<double>(recipe.warmup_steps);
  }
  const double progress = static_cast<double>(step - recipe.warmup_steps) /
                          static_cast<double>(std::max<int64_t>(1, total - recipe.warmup_steps));
  return recipe.learning_rate * (0.1 + 0.9 * 0.5 * (1.0 + std::cos(M_PI * std::min(1.0, progress))));
}

void SetLearningRate(torch::optim::Optimizer& optimizer, double lr) {
  for (torch::optim::OptimizerParamGroup& group : optimizer.param_groups()) {
    group.options().set_lr(lr);
  }
}

// Sequence models: mean cross-entropy per target token over each batch. Batches hold
// documents of similar length (each epoch: shuffle, sort windows of 64 batches by length,
// cut into batches, shuffle the batches), each cut to its longest row, so little is padding.
absl::StatusOr<TrainReport> TrainSequences(TorchModel& model, const Dataset& train,
                                           const TrainRecipe& recipe, const ProgressFn& progress) {
  const auto start = std::chrono::steady_clock::now();
  const int64_t n = recipe.train_size > 0 ? std::min(recipe.train_size, train.size()) : train.size();
  const int64_t length = train.sequence_length;
  std::vector<int64_t> lengths(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) lengths[i] = train.used_positions(i);
  torch::Tensor tokens = torch::from_blob(const_cast<int32_t*>(train.tokens.data()), {n, length},
                                          torch::kInt32);
  torch::Tensor targets = torch::from_blob(const_cast<int32_t*>(train.targets.data()),
                                           {n, length}, torch::kInt32);
  std::vector<torch::Tensor> params = model.TrainableParameters();
  std::unique_ptr<torch::optim::Optimizer> optimizer = MakeOptimizer(params, recipe);

  std::mt19937_64 rng(recipe.seed);
  const int64_t batches_per_epoch = (n + recipe.batch_size - 1) / recipe.batch_size;
  const int64_t total_steps = batches_per_epoch * recipe.epochs;
  TrainReport report;
  double smoothed = 0;
  for (int64_t epoch = 0; epoch < recipe.epochs; ++epoch) {
    std::vector<int64_t> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);
    const int64_t window = recipe.batch_size * 64;
    for (int64_t w = 0; w < n; w += window) {
      std::stable_sort(order.begin() + w, order.begin() + std::min(n, w + window),
                       [&](int64_t a, int64_t b) { return lengths[a] < lengths[b]; });
    }
    std::vector<int64_t> batch_order(static_cast<size_t>(batches_per_epoch));
    std::iota(batch_order.begin(), batch_order.end(), 0);
    std::shuffle(batch_order.begin(), batch_order.end(), rng);
    double epoch_loss = 0;
    int64_t epoch_tokens = 0;
    for (int64_t b = 0; b < batches_per_epoch; ++b) {
      const int64_t step = epoch * batches_per_epoch + b;
      const int64_t begin = batch_order[b] * recipe.batch_size;
      const int64_t end = std::min(n, begin + recipe.batch_size);
      int64_t used = 1;
      for (int64_t i = begin; i < end; ++i) used = std::max(used, lengths[order[i]]);
      torch::Tensor idx = torch::from_blob(order.data() + begin, {end - begin}, torch::kInt64);
      torch::Tensor x = tokens.index_select(0, idx).slice(1, 0, used).to(torch::kInt64);
      torch::Tensor y = targets.index_select(0, idx).slice(1, 0, used).to(torch::kInt64);
      torch::Tensor logits = model.Logits(x);
      torch::Tensor loss = torch::nn::functional::cross_entropy(
          logits.reshape({-1, logits.size(-1)}), y.reshape({-1}),
          torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-1));
      SetLearningRate(*optimizer, LearningRate(recipe, step, total_steps));
      optimizer->zero_grad();
      loss.backward();
      if (recipe.clip_norm > 0) torch::nn::utils::clip_grad_norm_(params, recipe.clip_norm);
      optimizer->step();
      const double value = loss.item<double>();
      if (step == 0) report.first_step_loss = value;
      if (!std::isfinite(value)) {
        return absl::FailedPreconditionError(absl::StrCat(
            "training diverged (loss ", value, ") at step ", step + 1, "; lower the learning rate"));
      }
      const int64_t counted = (y >= 0).sum().item<int64_t>();
      epoch_loss += value * static_cast<double>(counted);
      epoch_tokens += counted;
      // Exponential moving average with bias correction (the first steps are not pulled
      // towards zero).
      smoothed = 0.95 * smoothed + 0.05 * value;
      ReportProgress(progress, "train", step + 1, total_steps,
                     absl::StrFormat("epoch %d/%d loss %.3f nats/token", epoch + 1, recipe.epochs,
                                     smoothed / (1 - std::pow(0.95, static_cast<double>(step + 1)))));
    }
    report.final_epoch_loss = epoch_loss / static_cast<double>(std::max<int64_t>(1, epoch_tokens));
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSIGN_OR_RETURN(report.optimizer_state, FinalOptimizerState(*optimizer, model, recipe));
  return report;
}

absl::StatusOr<TrainReport> TrainTorch(TorchModel& model, const Dataset& train,
                                       const TrainRecipe& recipe, const ProgressFn& progress) {
  const auto start = std::chrono::steady_clock::now();
  const int64_t n = recipe.train_size > 0 ? std::min(recipe.train_size, train.size()) : train.size();
  const int64_t dim = train.feature_dim;
  torch::Tensor x = ViewRows(train.features.data(), n, dim);
  torch::Tensor y = torch::from_blob(const_cast<int32_t*>(train.labels.data()), {n}, torch::kInt32)
                        .to(torch::kInt64);

  std::vector<torch::Tensor> params = model.TrainableParameters();
  std::unique_ptr<torch::optim::Optimizer> optimizer = MakeOptimizer(params, recipe);

  std::mt19937_64 rng(recipe.seed);
  std::vector<int64_t> order(static_cast<size_t>(n));
  const int64_t batches_per_epoch = (n + recipe.batch_size - 1) / recipe.batch_size;
  const int64_t total_steps = batches_per_epoch * recipe.epochs;
  TrainReport report;
  for (int64_t epoch = 0; epoch < recipe.epochs; ++epoch) {
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);
    torch::Tensor perm = torch::from_blob(order.data(), {n}, torch::kInt64);
    double epoch_loss = 0;
    for (int64_t b = 0; b < batches_per_epoch; ++b) {
      const int64_t begin = b * recipe.batch_size, end = std::min(n, begin + recipe.batch_size);
      torch::Tensor idx = perm.slice(0, begin, end);
      // A seed per step derived from the recipe's (the shuffling stream is left alone).
      const uint64_t step_seed = recipe.seed * 0x9E3779B97F4A7C15ULL +
                                 static_cast<uint64_t>(epoch * batches_per_epoch + b);
      torch::Tensor loss = torch::nn::functional::cross_entropy(
          model.TrainingLogits(x.index_select(0, idx), step_seed), y.index_select(0, idx));
      optimizer->zero_grad();
      loss.backward();
      optimizer->step();
      const double value = loss.item<double>();
      if (!std::isfinite(value)) {
        return absl::FailedPreconditionError(absl::StrCat(
            "training diverged (loss ", value, ") in epoch ", epoch + 1, "; lower the learning rate"));
      }
      epoch_loss += value * static_cast<double>(end - begin);
      ReportProgress(progress, "train", epoch * batches_per_epoch + b + 1, total_steps,
                     absl::StrFormat("epoch %d/%d loss %.4f", epoch + 1, recipe.epochs, value));
    }
    report.final_epoch_loss = epoch_loss / static_cast<double>(n);
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSIGN_OR_RETURN(report.optimizer_state, FinalOptimizerState(*optimizer, model, recipe));
  return report;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Model>> InitialModel(const ModelConfig& config,
                                                    const TrainRecipe& recipe) {
  if (recipe.init_model.empty()) return CreateModel(config, recipe.seed);
  ASSIGN_OR_RETURN(std::unique_ptr<Model> init, LoadModel(recipe.init_model));
  if (!recipe.init_fingerprint.empty() && init->Fingerprint() != recipe.init_fingerprint) {
    return absl::FailedPreconditionError(
        absl::StrCat("the init model ", recipe.init_model, " has weights fingerprint ",
                     init->Fingerprint(), ", the recipe was fine-tuned from ",
                     recipe.init_fingerprint, ": restore the init model to retrain"));
  }
  if (ModelConfigToJson(init->config(), TrainRecipe{}) !=
      ModelConfigToJson(config, TrainRecipe{})) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the init model ", recipe.init_model, " has another architecture than this model's"));
  }
  return init;
}

absl::StatusOr<TrainReport> Train(Model& model, const Dataset& train, const TrainRecipe& recipe,
                                  const ProgressFn& progress) {
  RETURN_IF_ERROR(ValidateRecipe(recipe));
  if (train.size() == 0) return absl::InvalidArgumentError("training set is empty");
  RETURN_IF_ERROR(CheckDataFitsModel(train, model.config(), "training"));
  auto* torch_model = dynamic_cast<TorchModel*>(&model);
  if (torch_model == nullptr) return absl::UnimplementedError("model cannot be trained by this trainer");
  return CatchTorchErrors("training", [&] {
    return train.is_sequence() ? TrainSequences(*torch_model, train, recipe, progress)
                               : TrainTorch(*torch_model, train, recipe, progress);
  });
}

absl::Status SaveTrainedModel(const Model& model, const std::string& dir, const TrainRecipe& recipe,
                              const TrainReport& report) {
  RETURN_IF_ERROR(model.Save(dir, recipe));
  if (!report.optimizer_state.has_value()) return RemoveOptimizerState(dir);
  return SaveOptimizerState(dir, model, *report.optimizer_state);
}

absl::StatusOr<Evaluation> Evaluate(const Model& model, const Dataset& data) {
  if (data.size() == 0) return absl::InvalidArgumentError("evaluation set is empty");
  RETURN_IF_ERROR(CheckDataFitsModel(data, model.config(), "evaluation"));
  // Classifiers: 2048 rows per batch. Sequences: one row at a time, without its padding.
  const int64_t batch = data.is_sequence() ? 1 : 2048;
  Evaluation eval;
  int64_t counted = 0;
  for (int64_t begin = 0; begin < data.size(); begin += batch) {
    const int64_t rows = std::min(batch, data.size() - begin);
    Batch inputs = data.Rows(begin, begin + rows);
    if (data.is_sequence()) inputs.length = data.used_positions(begin);
    ASSIGN_OR_RETURN(Eigen::MatrixXf probs, model.Predict(inputs));
    const int32_t* outputs = inputs.outputs();
    for (int64_t i = 0; i < probs.rows(); ++i) {
      const int32_t label = outputs[i];
      if (label < 0) continue;
      Eigen::Index predicted;
      probs.row(i).maxCoeff(&predicted);
      eval.accuracy += predicted == label ? 1 : 0;
      eval.mean_loss -= std::log(std::max(probs(i, label), 1e-30f));
      ++counted;
    }
  }
  eval.accuracy /= static_cast<double>(std::max<int64_t>(1, counted));
  eval.mean_loss /= static_cast<double>(std::max<int64_t>(1, counted));
  return eval;
}

double UnigramCrossEntropy(const Dataset& train, const Dataset& data, int64_t classes) {
  std::vector<double> counts(static_cast<size_t>(classes), 1.0);  // add-one smoothing
  for (int32_t t : train.targets) {
    if (t >= 0 && t < classes) counts[t] += 1;
  }
  double total = 0;
  for (double c : counts) total += c;
  double loss = 0;
  int64_t n = 0;
  for (int32_t t : data.targets) {
    if (t < 0 || t >= classes) continue;
    loss -= std::log(counts[t] / total);
    ++n;
  }
  return loss / static_cast<double>(std::max<int64_t>(1, n));
}

}  // namespace tda
