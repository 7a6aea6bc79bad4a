#include "ablation/leave_one_out.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/statistics.h"
#include "common/status_macros.h"
#include "grad/per_sample_gradients.h"

namespace tda {
namespace {

constexpr int64_t kChunk = 4096;

struct Objective {
  double value = 0;
  Eigen::VectorXd grad;
};

// F and grad F at the model's parameters (see the header), in float64 from float32 captures.
absl::StatusOr<Objective> EvaluateObjective(const Model& model, const Dataset& data,
                                            int64_t excluded, double weight_decay) {
  const int64_t n = data.size();
  const Eigen::VectorXd theta = model.Parameters().cast<double>();
  Objective out;
  out.grad = Eigen::VectorXd::Zero(theta.size());
  for (int64_t begin = 0; begin < n; begin += kChunk) {
    const int64_t rows = std::min(kChunk, n - begin);
    ASSIGN_OR_RETURN(BatchCapture capture, model.Capture(data.Rows(begin, begin + rows)));
    Eigen::MatrixXd grads = PerSampleGradientColumns(capture, model.layout());
    if (excluded >= begin && excluded < begin + rows) {
      grads.col(excluded - begin).setZero();
      capture.losses[excluded - begin] = 0;
    }
    out.grad += grads.rowwise().sum();
    for (float l : capture.losses) out.value += l;
  }
  out.grad = out.grad / static_cast<double>(n) + weight_decay * theta;
  out.value = out.value / static_cast<double>(n) + 0.5 * weight_decay * theta.squaredNorm();
  return out;
}

// (H_F) v: Hessian of F (excluded sample removed) times v.
absl::StatusOr<Eigen::VectorXd> ObjectiveHvp(const Model& model, const Dataset& data,
                                             int64_t excluded, double weight_decay,
                                             const Eigen::VectorXd& v) {
  const int64_t n = data.size();
  Eigen::VectorXd out = weight_decay * v;
  for (int64_t begin = 0; begin < n; begin += kChunk) {
    const int64_t rows = std::min(kChunk, n - begin);
    ASSIGN_OR_RETURN(Eigen::VectorXd hv,
                     model.CurvatureVectorProduct(data.Rows(begin, begin + rows), v,
                                                  Curvature::kHessian));
    out += (static_cast<double>(rows) / static_cast<double>(n)) * hv;
  }
  if (excluded >= 0) {
    ASSIGN_OR_RETURN(Eigen::VectorXd hv,
                     model.CurvatureVectorProduct(data.Rows(excluded, excluded + 1), v,
                                                  Curvature::kHessian));
    out -= hv / static_cast<double>(n);
  }
  return out;
}

absl::StatusOr<double> QueryLoss(const Model& model, const float* query, int32_t label) {
  ASSIGN_OR_RETURN(BatchCapture capture, model.Capture(Batch::Classification(query, &label, 1)));
  return static_cast<double>(capture.losses[0]);
}

absl::StatusOr<std::unique_ptr<Model>> CopyModel(const Model& model) {
  ASSIGN_OR_RETURN(std::unique_ptr<Model> copy, CreateModel(model.config(), 0));
  RETURN_IF_ERROR(copy->SetParameters(model.Parameters()));
  return copy;
}

}  // namespace

absl::StatusOr<NewtonReport> MinimizeRegularizedLoss(Model& model, const Dataset& data,
                                                     int64_t excluded,
                                                     const NewtonOptions& options) {
  if (!(options.weight_decay > 0) || !std::isfinite(options.weight_decay)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "leave-one-out retraining needs weight decay > 0 (a strictly convex objective), got ",
        options.weight_decay));
  }
  if (excluded < -1 || excluded >= data.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("excluded sample ", excluded, " is not in [-1, ", data.size(), ")"));
  }
  if (data.size() == 0) return absl::InvalidArgumentError("training set is empty");
  const double wd = options.weight_decay;
  NewtonReport report;
  ASSIGN_OR_RETURN(Objective current, EvaluateObjective(model, data, excluded, wd));
  double previous_norm = INFINITY;
  for (int64_t step = 0; step < options.max_steps; ++step) {
    const double norm = current.grad.norm();
    // Converged, or stalled at the float32 floor (Newton steps no longer halve the gradient).
    if (norm < options.gradient_tolerance || (step >= 2 && norm > 0.5 * previous_norm)) break;
    previous_norm = norm;
    // Conjugate gradients on H_F x = -grad.
    const Eigen::VectorXd b = -current.grad;
    Eigen::VectorXd x = Eigen::VectorXd::Zero(b.size()), r = b, p = r;
    double rs = r.squaredNorm();
    for (int64_t it = 0; it < options.max_cg_iterations; ++it) {
      ASSIGN_OR_RETURN(Eigen::VectorXd ap, ObjectiveHvp(model, data, excluded, wd, p));
      const double alpha = rs / p.dot(ap);
      x += alpha * p;
      r -= alpha * ap;
      ++report.cg_iterations;
      const double rs_new = r.squaredNorm();
      if (std::sqrt(rs_new) < options.cg_tolerance * b.norm()) break;
      p = r + (rs_new / rs) * p;
      rs = rs_new;
    }
    // Backtracking (Armijo); tiny predicted decreases are below float precision: take them.
    const Eigen::VectorXf theta = model.Parameters();
    const double slope = current.grad.dot(x);
    double t = 1.0;
    Objective next;
    for (int tries = 0;; ++tries) {
      RETURN_IF_ERROR(model.SetParameters(theta + (t * x).cast<float>()));
      ASSIGN_OR_RETURN(next, EvaluateObjective(model, data, excluded, wd));
      if (next.value <= current.value + 1e-4 * t * slope || -slope < 1e-12 || tries >= 30) break;
      t *= 0.5;
    }
    current = std::move(next);
    ++report.steps;
  }
  report.objective = current.value;
  report.gradient_norm = current.grad.norm();
  return report;
}

absl::StatusOr<Eigen::VectorXd> PredictRemovalEffects(const Model& model, const Dataset& train,
                                                      const float* query, int32_t query_label,
                                                      const Preconditioner& preconditioner) {
  const int64_t n = train.size();
  if (n == 0) return absl::InvalidArgumentError("training set is empty");
  ASSIGN_OR_RETURN(BatchCapture capture,
                   model.Capture(Batch::Classification(query, &query_label, 1)));
  ASSIGN_OR_RETURN(Eigen::MatrixXd preconditioned,
                   preconditioner.Apply(PerSampleGradientColumns(capture, model.layout())));
  Eigen::VectorXd out(n);
  for (int64_t begin = 0; begin < n; begin += kChunk) {
    const int64_t rows = std::min(kChunk, n - begin);
    ASSIGN_OR_RETURN(BatchCapture batch, model.Capture(train.Rows(begin, begin + rows)));
    out.segment(begin, rows) =
        PerSampleGradientColumns(batch, model.layout()).transpose() * preconditioned.col(0);
  }
  return Eigen::VectorXd(out / static_cast<double>(n));
}

absl::StatusOr<LooResult> LeaveOneOut(const Model& model, const Dataset& train, const float* query,
                                      int32_t query_label, const std::vector<LooMethod>& methods,
                                      const LooOptions& options, const ProgressFn& progress) {
  const int64_t n = train.size();
  if (methods.empty()) return absl::InvalidArgumentError("leave-one-out needs at least one method");
  for (const LooMethod& m : methods) {
    if (m.predicted.size() != n) {
      return absl::InvalidArgumentError(absl::StrCat("method ", m.name, ": ", m.predicted.size(),
                                                     " predictions for ", n, " training samples"));
    }
  }
  if (options.top_k < 0 || options.random < 0 || options.top_k + options.random == 0 ||
      options.top_k + options.random > n) {
    return absl::InvalidArgumentError(absl::StrCat("top_k (", options.top_k, ") + random (",
                                                   options.random, ") must be in [1, ", n, "]"));
  }
  // Top-k by |prediction| of the first method, then random others.
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  const Eigen::VectorXd& first = methods[0].predicted;
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return std::abs(first(a)) > std::abs(first(b)); });
  LooResult result;
  result.removed.assign(order.begin(), order.begin() + options.top_k);
  std::vector<int64_t> rest(order.begin() + options.top_k, order.end());
  std::mt19937_64 rng(options.seed);
  std::shuffle(rest.begin(), rest.end(), rng);
  result.removed.insert(result.removed.end(), rest.begin(), rest.begin() + options.random);

  ASSIGN_OR_RETURN(std::unique_ptr<Model> work, CopyModel(model));
  ASSIGN_OR_RETURN(result.query_loss, QueryLoss(model, query, query_label));
  const Eigen::VectorXf optimum = model.Parameters();
  const int64_t k = static_cast<int64_t>(result.removed.size());
  result.actual.resize(k);
  for (int64_t j = 0; j < k; ++j) {
    RETURN_IF_ERROR(work->SetParameters(optimum));
    ASSIGN_OR_RETURN(NewtonReport report,
                     MinimizeRegularizedLoss(*work, train, result.removed[j], options.newton));
    ASSIGN_OR_RETURN(double loss, QueryLoss(*work, query, query_label));
    result.actual(j) = loss - result.query_loss;
    ReportProgress(progress, "retrain", j + 1, k,
                   absl::StrCat("removed row ", result.removed[j], ", ", report.steps,
                                " Newton steps, |grad| ", report.gradient_norm));
  }
  for (const LooMethod& m : methods) {
    Eigen::VectorXd predicted(k);
    for (int64_t j = 0; j < k; ++j) predicted(j) = m.predicted(result.removed[j]);
    result.methods.push_back(m.name);
    result.pearson.push_back(Pearson(predicted, result.actual));
    result.predicted.push_back(std::move(predicted));
  }
  return result;
}

}  // namespace tda
