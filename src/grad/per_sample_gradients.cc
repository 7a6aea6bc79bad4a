#include "grad/per_sample_gradients.h"

namespace tda {

RowMatrixXf PerSampleGradients(const BatchCapture& capture, const ParamLayout& layout) {
  const int64_t n = capture.samples, t = capture.positions;
  RowMatrixXf out(n, layout.total());
  for (size_t l = 0; l < layout.layers.size(); ++l) {
    const TrackedLayer& layer = layout.layers[l];
    const LayerCapture& lc = capture.layers[l];
    for (int64_t i = 0; i < n; ++i) {
      // G_i = sum_t g_t a_t^T = g_block^T a_block (out x cols), stored row-major.
      Eigen::Map<RowMatrixXf>(out.row(i).data() + layer.offset, layer.out, layer.cols()).noalias() =
          lc.g.middleRows(i * t, t).transpose() * lc.a.middleRows(i * t, t);
    }
  }
  return out;
}

Eigen::MatrixXd PerSampleGradientColumns(const BatchCapture& capture, const ParamLayout& layout) {
  return PerSampleGradients(capture, layout).cast<double>().transpose();
}

}  // namespace tda
