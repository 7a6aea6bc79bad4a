#include "grad/adam_correction.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace tda {

const char* AdamCorrectionKindName(AdamCorrectionKind kind) {
  switch (kind) {
    case AdamCorrectionKind::kExact:
      return "exact";
    case AdamCorrectionKind::kRank1:
      return "rank1";
    case AdamCorrectionKind::kNone:
      break;
  }
  return "";
}

absl::StatusOr<AdamCorrectionKind> ParseAdamCorrectionKind(const std::string& name,
                                                           const std::string& source) {
  for (AdamCorrectionKind kind :
       {AdamCorrectionKind::kNone, AdamCorrectionKind::kExact, AdamCorrectionKind::kRank1}) {
    if (name == AdamCorrectionKindName(kind)) return kind;
  }
  return absl::DataLossError(absl::StrCat(source, ": adam_correction '", name,
                                          "' is not one of exact, rank1 (or absent)"));
}

AdamCorrectionKind AdamCorrectionKindFor(int64_t projection_dim_per_side) {
  return projection_dim_per_side == 0 ? AdamCorrectionKind::kExact : AdamCorrectionKind::kRank1;
}

AdamCorrection::AdamCorrection(OptimizerState state, const ParamLayout& layout,
                               AdamCorrectionKind kind)
    : state_(std::move(state)), layout_(layout), kind_(kind) {
  const Eigen::VectorXd v_hat = state_.BiasCorrected();
  exact_ = (1.0 / (v_hat.array().sqrt() + state_.eps)).matrix();
  if (kind_ != AdamCorrectionKind::kRank1) return;
  const double root_eps = std::sqrt(state_.eps);
  for (const TrackedLayer& layer : layout_.layers) {
    Eigen::Map<const RowMatrixXd> v(v_hat.data() + layer.offset, layer.out, layer.cols());
    const double total = std::max(v.sum(), std::numeric_limits<double>::min());
    const Eigen::ArrayXd r = v.rowwise().sum().array();
    const Eigen::ArrayXd c = v.colwise().sum().transpose().array() / total;
    row_factors_.push_back(Eigen::VectorXf((1.0 / (r.sqrt() + root_eps)).cast<float>()));
    col_factors_.push_back(Eigen::VectorXf((1.0 / (c.sqrt() + root_eps)).cast<float>()));
  }
}

Eigen::VectorXd AdamCorrection::Multiplier() const {
  if (kind_ != AdamCorrectionKind::kRank1) return exact_;
  Eigen::VectorXd out(layout_.total());
  for (size_t l = 0; l < layout_.layers.size(); ++l) {
    const TrackedLayer& layer = layout_.layers[l];
    Eigen::Map<RowMatrixXd>(out.data() + layer.offset, layer.out, layer.cols()) =
        row_factors_[l].cast<double>() * col_factors_[l].cast<double>().transpose();
  }
  return out;
}

void AdamCorrection::ScaleSides(BatchCapture* capture) const {
  if (kind_ != AdamCorrectionKind::kRank1) return;
  for (size_t l = 0; l < layout_.layers.size(); ++l) {
    LayerCapture& lc = capture->layers[l];
    lc.g = lc.g * row_factors_[l].asDiagonal();
    lc.a = lc.a * col_factors_[l].asDiagonal();
  }
}

void AdamCorrection::ScaleGradients(RowMatrixXf* rows) const {
  if (kind_ != AdamCorrectionKind::kExact) return;
  const Eigen::RowVectorXf m = exact_.cast<float>().transpose();
  rows->array().rowwise() *= m.array();
}

absl::StatusOr<std::shared_ptr<const AdamCorrection>> LoadAdamCorrection(
    const std::string& model_dir, const Model& model, AdamCorrectionKind kind) {
  if (kind == AdamCorrectionKind::kNone) return std::shared_ptr<const AdamCorrection>();
  ASSIGN_OR_RETURN(OptimizerState state, LoadOptimizerState(model_dir, model));
  return std::make_shared<const AdamCorrection>(std::move(state), model.layout(), kind);
}

}  // namespace tda
