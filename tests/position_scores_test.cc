// PerPositionScores: per-position terms of a score sum exactly to the score of the per-sample
// gradient (PerSampleGradients), for captures with several positions and padding, with and
// without bias columns.
#include "grad/position_scores.h"

#include <random>

#include <gtest/gtest.h>

#include "grad/per_sample_gradients.h"

namespace tda {
namespace {

TEST(PerPositionScores, SumToTheSampleScore) {
  ParamLayout layout;
  layout.Add("h.0.attn.c_attn", 12, 4, /*has_bias=*/true);
  layout.Add("h.0.mlp.c_fc", 6, 4, /*has_bias=*/false);
  const int64_t samples = 3, positions = 5;
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  BatchCapture capture;
  capture.samples = samples;
  capture.positions = positions;
  for (const TrackedLayer& layer : layout.layers) {
    LayerCapture lc;
    lc.a = RowMatrixXf::NullaryExpr(samples * positions, layer.cols(), [&] { return normal(rng); });
    lc.g = RowMatrixXf::NullaryExpr(samples * positions, layer.out, [&] { return normal(rng); });
    lc.g.row(positions - 1).setZero();  // a padding position of sample 0
    capture.layers.push_back(std::move(lc));
  }
  Eigen::VectorXd direction(layout.total());
  for (Eigen::Index k = 0; k < direction.size(); ++k) direction[k] = normal(rng);

  const Eigen::MatrixXd per_position = PerPositionScores(capture, layout, direction);
  ASSERT_EQ(per_position.rows(), samples);
  ASSERT_EQ(per_position.cols(), positions);
  EXPECT_EQ(per_position(0, positions - 1), 0.0);
  const Eigen::VectorXd whole =
      PerSampleGradients(capture, layout).cast<double>() * direction;
  for (int64_t i = 0; i < samples; ++i) {
    EXPECT_NEAR(per_position.row(i).sum(), whole[i], 1e-4 * (1 + std::abs(whole[i])));
  }
  // Each term is d^T vec(g_t a_t^T) on its own: check one by forming the outer products.
  double term = 0;
  for (size_t l = 0; l < layout.layers.size(); ++l) {
    const TrackedLayer& layer = layout.layers[l];
    const Eigen::MatrixXd outer = capture.layers[l].g.row(7).transpose().cast<double>() *
                                  capture.layers[l].a.row(7).cast<double>();
    const Eigen::Map<const RowMatrixXd> d(direction.data() + layer.offset, layer.out, layer.cols());
    term += outer.cwiseProduct(d).sum();
  }
  EXPECT_NEAR(per_position(1, 2), term, 1e-9 * (1 + std::abs(term)));
}

}  // namespace
}  // namespace tda
