#include "ops/loo_experiment.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "model/model.h"
#include "model/trainer.h"

namespace tda {

absl::StatusOr<LooExperimentResult> RunLooExperiment(const LooExperiment &experiment,
                                                     const Dataset &train, const Dataset &test,
                                                     const ProgressFn &progress) {
  const double weight_decay = experiment.recipe.weight_decay;
  if (!(weight_decay > 0)) {
    return absl::InvalidArgumentError("leave-one-out needs weight decay > 0 (a convex objective)");
  }
  if (experiment.methods.empty()) return absl::InvalidArgumentError("no methods to compare");
  if (experiment.query >= test.size() || test.size() == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("query ", experiment.query, " is not one of the ", test.size(), " test rows"));
  }
  ModelConfig config;
  config.hidden.clear();  // logistic regression (ModelConfig's default is one hidden layer)
  config.input_dim = train.feature_dim;
  if (!train.class_names.empty()) {
    config.num_classes = static_cast<int64_t>(train.class_names.size());
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Model> model, CreateModel(config, experiment.recipe.seed));
  RETURN_IF_ERROR(Train(*model, train, experiment.recipe, progress).status());
  NewtonOptions newton;
  newton.weight_decay = weight_decay;
  RETURN_IF_ERROR(MinimizeRegularizedLoss(*model, train, -1, newton).status());

  LooExperimentResult result;
  result.parameters = model->layout().total();
  result.query = experiment.query;
  if (result.query < 0) {
    ASSIGN_OR_RETURN(BatchCapture c,
                     model->Capture(test.Rows(0, std::min<int64_t>(20, test.size()))));
    result.query = std::max_element(c.losses.begin(), c.losses.end()) - c.losses.begin();
  }
  const Dataset query_set = test.Select({result.query});
  MethodSettings settings;
  settings.damping = weight_decay;
  settings.curvature = Curvature::kHessian;
  std::vector<LooMethod> loo_methods;
  for (Method m : experiment.methods) {
    ASSIGN_OR_RETURN(MethodScores scores,
                     ComputeMethodScores(m, *model, train, query_set, settings, progress));
    loo_methods.push_back(
        {MethodName(m), scores.scores.col(0) / static_cast<double>(train.size())});
    result.scores.push_back(std::move(scores));
  }
  LooOptions options;
  options.newton = newton;
  options.top_k = experiment.top_k;
  options.random = experiment.random;
  options.seed = experiment.recipe.seed;
  ASSIGN_OR_RETURN(result.loo, LeaveOneOut(*model, train, query_set.row(0), query_set.labels[0],
                                           loo_methods, options, progress));
  return result;
}

}  // namespace tda
