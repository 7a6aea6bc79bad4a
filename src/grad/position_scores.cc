#include "grad/position_scores.h"

namespace tda {

Eigen::MatrixXd PerPositionScores(const BatchCapture& capture, const ParamLayout& layout,
                                  const Eigen::VectorXd& direction) {
  const int64_t n = capture.samples, t = capture.positions;
  Eigen::MatrixXd scores = Eigen::MatrixXd::Zero(n, t);
  for (size_t l = 0; l < layout.layers.size(); ++l) {
    const TrackedLayer& layer = layout.layers[l];
    const LayerCapture& lc = capture.layers[l];
    // d_l as out x cols: d^T vec(g a^T) = g^T D_l a, so one row per position is
    // rowwise((g D_l) .* a).sum().
    const Eigen::Map<const RowMatrixXd> d_l(direction.data() + layer.offset, layer.out,
                                            layer.cols());
    const Eigen::MatrixXd gd = lc.g.cast<double>() * d_l;  // rows x cols
    const Eigen::VectorXd per_row = gd.cwiseProduct(lc.a.cast<double>()).rowwise().sum();
    for (int64_t i = 0; i < n; ++i) scores.row(i) += per_row.segment(i * t, t).transpose();
  }
  return scores;
}

}  // namespace tda
