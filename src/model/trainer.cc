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
  if (recipe.optimizer != "adam" && recipe.optimizer != "sgd") {
    return absl::InvalidArgumentError(absl::StrCat("unknown optimizer '", recipe.optimizer, "' (known: adam, sgd)"));
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

absl::StatusOr<TrainReport> TrainTorch(TorchModel& model, const Dataset& train,
                                       const TrainRecipe& recipe, const ProgressFn& progress) {
  const auto start = std::chrono::steady_clock::now();
  const int64_t n = recipe.train_size > 0 ? std::min(recipe.train_size, train.size()) : train.size();
  const int64_t dim = train.feature_dim;
  torch::Tensor x = ViewRows(train.features.data(), n, dim);
  torch::Tensor y = torch::from_blob(const_cast<int32_t*>(train.labels.data()), {n}, torch::kInt32)
                        .to(torch::kInt64);

  std::vector<torch::Tensor> params = model.TrainableParameters();
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  if (recipe.optimizer == "adam") {
    optimizer = std::make_unique<torch::optim::Adam>(
        params, torch::optim::AdamOptions(recipe.learning_rate).weight_decay(recipe.weight_decay));
  } else {
    optimizer = std::make_unique<torch::optim::SGD>(
        params, torch::optim::SGDOptions(recipe.learning_rate)
                    .momentum(recipe.momentum)
                    .weight_decay(recipe.weight_decay));
  }

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
      torch::Tensor loss = torch::nn::functional::cross_entropy(model.Logits(x.index_select(0, idx)),
                                                                y.index_select(0, idx));
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
  return report;
}

}  // namespace

absl::StatusOr<TrainReport> Train(Model& model, const Dataset& train, const TrainRecipe& recipe,
                                  const ProgressFn& progress) {
  RETURN_IF_ERROR(ValidateRecipe(recipe));
  if (train.size() == 0) return absl::InvalidArgumentError("training set is empty");
  if (train.feature_dim != model.config().input_dim) {
    return absl::InvalidArgumentError(absl::StrCat("training data has ", train.feature_dim,
                                                   " features, model expects ", model.config().input_dim));
  }
  auto* torch_model = dynamic_cast<TorchModel*>(&model);
  if (torch_model == nullptr) return absl::UnimplementedError("model cannot be trained by this trainer");
  return CatchTorchErrors("training", [&] { return TrainTorch(*torch_model, train, recipe, progress); });
}

absl::StatusOr<Evaluation> Evaluate(const Model& model, const Dataset& data) {
  if (data.size() == 0) return absl::InvalidArgumentError("evaluation set is empty");
  constexpr int64_t kBatch = 2048;
  Evaluation eval;
  for (int64_t begin = 0; begin < data.size(); begin += kBatch) {
    const int64_t rows = std::min(kBatch, data.size() - begin);
    ASSIGN_OR_RETURN(Eigen::MatrixXf probs, model.Predict(data.row(begin), rows));
    for (int64_t i = 0; i < rows; ++i) {
      Eigen::Index predicted;
      probs.row(i).maxCoeff(&predicted);
      const int32_t label = data.labels[begin + i];
      eval.accuracy += predicted == label ? 1 : 0;
      eval.mean_loss -= std::log(std::max(probs(i, label), 1e-30f));
    }
  }
  eval.accuracy /= static_cast<double>(data.size());
  eval.mean_loss /= static_cast<double>(data.size());
  return eval;
}

}  // namespace tda
