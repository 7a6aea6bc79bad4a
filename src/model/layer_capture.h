// What a tracked layer records during one forward + backward pass over a batch: its inputs `a`
// and the gradients `g` of the summed loss with respect to its outputs. Rows are positions,
// sample-major: row r belongs to sample r / positions. For an MLP positions == 1, so row r is
// sample r and its per-sample gradient is g_r a_r^T. Padding positions have g == 0.
#pragma once

#include <cstdint>
#include <vector>

#include <Eigen/Core>

namespace tda {

using RowMatrixXf = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowMatrixXd = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

struct LayerCapture {
  RowMatrixXf a;  // rows x cols(): layer inputs, with a trailing 1 column when the layer has a bias
  RowMatrixXf g;  // rows x out: d(sum of per-sample losses) / d(layer output)
};

struct BatchCapture {
  int64_t samples = 0;
  int64_t positions = 1;
  std::vector<LayerCapture> layers;  // one per tracked layer, in ParamLayout order
  std::vector<float> losses;         // per-sample loss (cross-entropy of the given labels)
};

}  // namespace tda
