#include "ablation/removal_ablation.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <random>

#include "absl/strings/str_cat.h"
#include "common/statistics.h"
#include "common/status_macros.h"
#include "curvature/factor_fitting.h"
#include "grad/per_sample_gradients.h"
#include "model/trainer.h"

namespace tda {
namespace {

constexpr int64_t kBatch = 256;

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

absl::Status ValidateRemoval(const std::vector<int64_t>& removed, int64_t n) {
  if (removed.empty()) return absl::InvalidArgumentError("ablation: no training samples to remove");
  std::vector<int64_t> sorted = removed;
  std::sort(sorted.begin(), sorted.end());
  for (size_t k = 0; k < sorted.size(); ++k) {
    if (sorted[k] < 0 || sorted[k] >= n) {
      return absl::InvalidArgumentError(
          absl::StrCat("ablation: training row ", sorted[k], " is not in [0, ", n, ")"));
    }
    if (k > 0 && sorted[k] == sorted[k - 1]) {
      return absl::InvalidArgumentError(
          absl::StrCat("ablation: training row ", sorted[k], " is listed twice"));
    }
  }
  if (static_cast<int64_t>(sorted.size()) >= n) {
    return absl::InvalidArgumentError(
        absl::StrCat("ablation: removing all ", n, " training samples leaves nothing to train on"));
  }
  return absl::OkStatus();
}

// A private copy of `model` (every parameter, tracked or not) through its own file format.
absl::StatusOr<std::unique_ptr<Model>> CopyModel(const Model& model, const TrainRecipe& recipe) {
  std::random_device entropy;
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    absl::StrCat("tda-model-copy-", entropy(), entropy());
  absl::Status saved = model.Save(dir.string(), recipe);
  absl::StatusOr<std::unique_ptr<Model>> copy =
      saved.ok() ? LoadModel(dir.string()) : absl::StatusOr<std::unique_ptr<Model>>(saved);
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  return copy;
}

// theta + (1/N) P sum_{i in removed} grad L_i, P the damped EK-FAC of the full parameters.
absl::StatusOr<Eigen::VectorXf> NewtonUnlearnedParameters(
    const Model& model, const Dataset& train, const std::vector<int64_t>& removed,
    const RemovalAblationOptions& options, const ProgressFn& progress) {
  ASSIGN_OR_RETURN(KroneckerFactors factors,
                   FitKroneckerFactors(model, train, options.fit, progress));
  ASSIGN_OR_RETURN(std::unique_ptr<KroneckerPreconditioner> preconditioner,
                   KroneckerPreconditioner::Create(
                       std::make_shared<const KroneckerFactors>(std::move(factors)),
                       Method::kEkfac, options.damping));
  const Dataset removed_rows = train.Select(removed);
  Eigen::VectorXd gradient_sum = Eigen::VectorXd::Zero(model.layout().total());
  for (int64_t begin = 0; begin < removed_rows.size(); begin += kBatch) {
    const int64_t end = std::min(removed_rows.size(), begin + kBatch);
    ASSIGN_OR_RETURN(BatchCapture capture, model.Capture(removed_rows.Rows(begin, end)));
    gradient_sum += PerSampleGradientColumns(capture, model.layout()).rowwise().sum();
  }
  ASSIGN_OR_RETURN(Eigen::MatrixXd step, preconditioner->Apply(gradient_sum));
  return model.Parameters() +
         (step.col(0) / static_cast<double>(train.size())).cast<float>();
}

std::optional<double> PearsonIfEnough(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() < 3 || a.size() != b.size()) return std::nullopt;
  return Pearson(a, b);
}

}  // namespace

absl::StatusOr<Eigen::VectorXd> QueryLosses(const Model& model, const Dataset& data) {
  Eigen::VectorXd losses(data.size());
  for (int64_t begin = 0; begin < data.size(); begin += kBatch) {
    const int64_t end = std::min(data.size(), begin + kBatch);
    ASSIGN_OR_RETURN(BatchCapture capture, model.Capture(data.Rows(begin, end)));
    for (int64_t q = begin; q < end; ++q) losses[q] = capture.losses[q - begin];
  }
  return losses;
}

absl::StatusOr<RemovalAblationResult> RunRemovalAblation(
    const Model& model, const TrainRecipe& recipe, const Dataset& full_train,
    const std::vector<int64_t>& removed, const std::vector<AblationTask>& tasks,
    const TrainingScoreFn& scores, const RemovalAblationOptions& options,
    const ProgressFn& progress) {
  const Dataset train =
      recipe.train_size > 0 && recipe.train_size < full_train.size()
          ? full_train.Select([&] {
              std::vector<int64_t> rows(static_cast<size_t>(recipe.train_size));
              for (int64_t i = 0; i < recipe.train_size; ++i) rows[i] = i;
              return rows;
            }())
          : full_train;
  const int64_t n = train.size();
  RETURN_IF_ERROR(ValidateRemoval(removed, n));
  if (tasks.empty()) return absl::InvalidArgumentError("ablation: no tasks to measure");
  for (const AblationTask& task : tasks) {
    RETURN_IF_ERROR(CheckDataFitsModel(task.queries, model.config(), "ablation task " + task.name));
    if (task.queries.size() == 0) {
      return absl::InvalidArgumentError(absl::StrCat("ablation task ", task.name, " is empty"));
    }
  }

  RemovalAblationResult result;
  result.removed = static_cast<int64_t>(removed.size());
  result.training_samples = n;
  // Predicted: (1/N) sum over removed rows of each query's scores; and the base losses.
  auto start = std::chrono::steady_clock::now();
  for (const AblationTask& task : tasks) {
    TaskEffect effect;
    effect.name = task.name;
    ASSIGN_OR_RETURN(Eigen::VectorXd base, QueryLosses(model, task.queries));
    ASSIGN_OR_RETURN(Eigen::MatrixXf task_scores, scores(task.queries.Rows(0, task.queries.size())));
    if (task_scores.rows() != n || task_scores.cols() != task.queries.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "ablation: scores for task ", task.name, " are ", task_scores.rows(), " x ",
          task_scores.cols(), ", expected ", n, " training rows x ", task.queries.size()));
    }
    for (int64_t q = 0; q < task.queries.size(); ++q) {
      QueryEffect query;
      query.id = q < static_cast<int64_t>(task.queries.ids.size()) ? task.queries.ids[q]
                                                                    : absl::StrCat(task.name, "/", q);
      query.base_loss = base[q];
      for (int64_t i : removed) query.predicted += task_scores(i, q);
      query.predicted /= static_cast<double>(n);
      effect.queries.push_back(std::move(query));
    }
    result.tasks.push_back(std::move(effect));
  }
  result.seconds_predicted = SecondsSince(start);
  ReportProgress(progress, "predict", 1, 1);

  if (options.newton) {
    start = std::chrono::steady_clock::now();
    ASSIGN_OR_RETURN(Eigen::VectorXf unlearned,
                     NewtonUnlearnedParameters(model, train, removed, options, progress));
    ASSIGN_OR_RETURN(std::unique_ptr<Model> copy, CopyModel(model, recipe));
    RETURN_IF_ERROR(copy->SetParameters(unlearned));
    for (size_t t = 0; t < tasks.size(); ++t) {
      ASSIGN_OR_RETURN(Eigen::VectorXd losses, QueryLosses(*copy, tasks[t].queries));
      for (size_t q = 0; q < result.tasks[t].queries.size(); ++q) {
        QueryEffect& query = result.tasks[t].queries[q];
        query.newton = losses[static_cast<Eigen::Index>(q)] - query.base_loss;
      }
    }
    if (!options.unlearned_model_dir.empty()) {
      RETURN_IF_ERROR(copy->Save(options.unlearned_model_dir, recipe));
    }
    result.seconds_newton = SecondsSince(start);
  }

  if (options.retrain) {
    start = std::chrono::steady_clock::now();
    TrainRecipe retrain_recipe = recipe;
    retrain_recipe.train_size = 0;
    std::vector<bool> is_removed(static_cast<size_t>(n), false);
    for (int64_t i : removed) is_removed[static_cast<size_t>(i)] = true;
    std::vector<int64_t> kept;
    for (int64_t i = 0; i < n; ++i) {
      if (!is_removed[static_cast<size_t>(i)]) kept.push_back(i);
    }
    auto retrain = [&](const Dataset& data,
                       std::string_view stage) -> absl::StatusOr<std::unique_ptr<Model>> {
      ASSIGN_OR_RETURN(std::unique_ptr<Model> fresh, InitialModel(model.config(), recipe));
      RETURN_IF_ERROR(
          Train(*fresh, data, retrain_recipe,
                [&](std::string_view, int64_t done, int64_t total, std::string_view detail) {
                  ReportProgress(progress, stage, done, total, detail);
                })
              .status());
      return fresh;
    };
    ASSIGN_OR_RETURN(std::unique_ptr<Model> without, retrain(train.Select(kept), "retrain"));
    std::unique_ptr<Model> baseline;
    if (options.retrain_baseline) {
      ASSIGN_OR_RETURN(baseline, retrain(train, "retrain baseline"));
    }
    for (size_t t = 0; t < tasks.size(); ++t) {
      ASSIGN_OR_RETURN(Eigen::VectorXd losses, QueryLosses(*without, tasks[t].queries));
      Eigen::VectorXd base_losses;
      if (baseline) {
        ASSIGN_OR_RETURN(base_losses, QueryLosses(*baseline, tasks[t].queries));
      }
      for (size_t q = 0; q < result.tasks[t].queries.size(); ++q) {
        QueryEffect& query = result.tasks[t].queries[q];
        const auto k = static_cast<Eigen::Index>(q);
        query.retrained = losses[k] - (baseline ? base_losses[k] : query.base_loss);
      }
    }
    result.seconds_retrain = SecondsSince(start);
  }

  std::vector<double> predicted, newton, retrained;
  for (TaskEffect& task : result.tasks) {
    double sum_p = 0, sum_n = 0, sum_r = 0;
    for (const QueryEffect& q : task.queries) {
      sum_p += q.predicted;
      predicted.push_back(q.predicted);
      if (q.newton) {
        sum_n += *q.newton;
        newton.push_back(*q.newton);
      }
      if (q.retrained) {
        sum_r += *q.retrained;
        retrained.push_back(*q.retrained);
      }
    }
    const double count = static_cast<double>(task.queries.size());
    task.mean_predicted = sum_p / count;
    if (options.newton) task.mean_newton = sum_n / count;
    if (options.retrain) task.mean_retrained = sum_r / count;
  }
  result.pearson_predicted_retrained = PearsonIfEnough(predicted, retrained);
  result.pearson_newton_retrained = PearsonIfEnough(newton, retrained);
  result.pearson_predicted_newton = PearsonIfEnough(predicted, newton);
  return result;
}

}  // namespace tda
