#include "ablation/lds.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <numeric>
#include <random>
#include <string>

#include "ablation/removal_ablation.h"
#include "absl/strings/str_cat.h"
#include "common/statistics.h"
#include "common/status_macros.h"
#include "model/model.h"
#include "model/trainer.h"

namespace tda {

absl::Status ValidateLdsOptions(const LdsOptions& options, int64_t n) {
  if (options.subsets < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("LDS needs at least 2 subsets to rank, got ", options.subsets));
  }
  if (!(options.alpha > 0 && options.alpha < 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("LDS subset fraction alpha must be in (0, 1), got ", options.alpha));
  }
  if (options.seeds_per_subset < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("LDS needs >= 1 seed per subset, got ", options.seeds_per_subset));
  }
  const int64_t kept = std::llround(options.alpha * static_cast<double>(n));
  if (kept <= 0 || kept >= n) {
    return absl::InvalidArgumentError(absl::StrCat("LDS subsets of fraction ", options.alpha,
                                                   " of ", n, " training samples keep ", kept,
                                                   ": need between 1 and ", n - 1));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::vector<int64_t>>> SampleSubsets(int64_t n,
                                                                const LdsOptions& options) {
  RETURN_IF_ERROR(ValidateLdsOptions(options, n));
  const int64_t kept = std::llround(options.alpha * static_cast<double>(n));
  std::mt19937_64 rng(options.seed);
  std::vector<int64_t> all(static_cast<size_t>(n));
  std::iota(all.begin(), all.end(), 0);
  std::vector<std::vector<int64_t>> subsets;
  for (int64_t m = 0; m < options.subsets; ++m) {
    std::shuffle(all.begin(), all.end(), rng);
    std::vector<int64_t> subset(all.begin(), all.begin() + kept);
    std::sort(subset.begin(), subset.end());
    subsets.push_back(std::move(subset));
  }
  return subsets;
}

absl::StatusOr<LdsRetraining> RetrainOnSubsets(const ModelConfig& config, const TrainRecipe& recipe,
                                               const Dataset& train, const Dataset& queries,
                                               const LdsOptions& options,
                                               const ProgressFn& progress) {
  if (queries.size() == 0) return absl::InvalidArgumentError("LDS needs at least one query");
  if (queries.feature_dim != train.feature_dim) {
    return absl::InvalidArgumentError(absl::StrCat(
        "queries have ", queries.feature_dim, " features, the training set ", train.feature_dim));
  }
  const auto start = std::chrono::steady_clock::now();
  LdsRetraining out;
  out.train_size = train.size();
  ASSIGN_OR_RETURN(out.subsets, SampleSubsets(train.size(), options));
  const int64_t m_total = options.subsets, seeds = options.seeds_per_subset;
  out.measured = Eigen::MatrixXd::Zero(m_total, queries.size());
  TrainRecipe sub_recipe = recipe;
  sub_recipe.train_size = 0;
  for (int64_t m = 0; m < m_total; ++m) {
    const Dataset subset = train.Select(out.subsets[m]);
    for (int64_t k = 0; k < seeds; ++k) {
      sub_recipe.seed = recipe.seed + static_cast<uint64_t>(k);
      ASSIGN_OR_RETURN(std::unique_ptr<Model> model, InitialModel(config, sub_recipe));
      ASSIGN_OR_RETURN(TrainReport report, Train(*model, subset, sub_recipe));
      ASSIGN_OR_RETURN(Eigen::VectorXd losses,
                       QueryMeasurements(*model, queries, options.measurement));
      out.measured.row(m) += losses.transpose() / static_cast<double>(seeds);
      ReportProgress(progress, "retrain", m * seeds + k + 1, m_total * seeds,
                     absl::StrCat("subset ", m + 1, "/", m_total, ", final epoch loss ",
                                  report.final_epoch_loss));
    }
  }
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

absl::StatusOr<LdsScore> LinearDatamodelingScore(const LdsRetraining& retraining,
                                                 const Eigen::MatrixXd& scores) {
  const int64_t m_total = retraining.measured.rows(), queries = retraining.measured.cols();
  if (scores.rows() != retraining.train_size || scores.cols() != queries ||
      static_cast<int64_t>(retraining.subsets.size()) != m_total) {
    return absl::InvalidArgumentError(
        absl::StrCat("LDS: scores are ", scores.rows(), " x ", scores.cols(), ", expected ",
                     retraining.train_size, " training samples x ", queries, " queries (", m_total,
                     " subsets, ", retraining.subsets.size(), " subset lists)"));
  }
  // predicted(S, q) = total(q) - sum_{i in S} score(i, q): the removed samples'
  // scores.
  const Eigen::RowVectorXd total = scores.colwise().sum();
  Eigen::MatrixXd predicted(m_total, queries);
  for (int64_t m = 0; m < m_total; ++m) {
    Eigen::RowVectorXd kept = Eigen::RowVectorXd::Zero(queries);
    for (int64_t i : retraining.subsets[m]) kept += scores.row(i);
    predicted.row(m) = total - kept;
  }
  LdsScore out;
  out.per_query.resize(queries);
  for (int64_t q = 0; q < queries; ++q) {
    out.per_query(q) =
        Spearman(Eigen::VectorXd(retraining.measured.col(q)), Eigen::VectorXd(predicted.col(q)));
  }
  out.mean = queries > 0 ? out.per_query.mean() : 0.0;
  return out;
}

}  // namespace tda
