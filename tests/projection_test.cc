// The Kronecker Gaussian projection is an unbiased inner-product estimator whose error shrinks
// as the projection grows (Johnson-Lindenstrauss), and projecting a capture directly equals
// projecting the full per-sample gradient.
#include "grad/projection.h"

#include "common/statistics.h"
#include "grad/per_sample_gradients.h"
#include "test_support.h"

namespace tda {
namespace {

struct Fixture {
  std::unique_ptr<Model> model;
  BatchCapture capture;
  RowMatrixXf grads;
};

const Fixture& TrainedFixture() {
  static Fixture* f = [] {
    auto* fx = new Fixture;
    testing::TinyModelSpec spec;
    spec.hidden = {64};
    spec.train_size = 2000;
    spec.epochs = 2;
    fx->model = testing::TrainTinyModel(spec);
    const Dataset& data = testing::FashionTrain(400);
    fx->capture = fx->model->Capture(data.Rows(0, data.size())).value();
    fx->grads = PerSampleGradients(fx->capture, fx->model->layout());
    return fx;
  }();
  return *f;
}

TEST(Projection, ZeroDimensionIsExact) {
  const Fixture& f = TrainedFixture();
  Projection identity(f.model->layout(), 0, 7);
  EXPECT_EQ(identity.output_dim(), f.model->layout().total());
  RowMatrixXf projected = identity.ProjectCapture(f.capture);
  EXPECT_LT((projected - f.grads).cwiseAbs().maxCoeff(), 1e-6);
}

TEST(Projection, CaptureProjectionEqualsProjectingFullGradients) {
  const Fixture& f = TrainedFixture();
  Projection p(f.model->layout(), 16, 3);
  RowMatrixXf from_capture = p.ProjectCapture(f.capture);
  Eigen::MatrixXd from_full = p.ProjectColumns(f.grads.cast<double>().transpose());
  const double scale = from_full.cwiseAbs().maxCoeff();
  EXPECT_LT((from_capture.cast<double>().transpose() - from_full).cwiseAbs().maxCoeff() / scale, 1e-5);
  // Same seed, same projection; another seed, another one.
  Projection same(f.model->layout(), 16, 3), other(f.model->layout(), 16, 4);
  EXPECT_EQ(same.ProjectCapture(f.capture), from_capture);
  EXPECT_NE(other.ProjectCapture(f.capture), from_capture);
}

TEST(Projection, InnerProductsAreUnbiasedAndErrorShrinksWithDimension) {
  const Fixture& f = TrainedFixture();
  Eigen::MatrixXd g = f.grads.cast<double>().transpose();  // D x N
  // Exact inner products of sample 0 with every other sample.
  Eigen::VectorXd exact = g.transpose() * g.col(0);

  // Unbiased: averaged over 40 seeds, the projected inner product of a fixed pair is close to
  // the exact one (within 4 standard errors of the seed average).
  std::vector<double> estimates;
  for (uint64_t seed = 0; seed < 40; ++seed) {
    Projection p(f.model->layout(), 8, seed);
    Eigen::MatrixXd pg = p.ProjectColumns(g.leftCols(2));
    estimates.push_back(pg.col(0).dot(pg.col(1)));
  }
  double mean = 0, var = 0;
  for (double e : estimates) mean += e / estimates.size();
  for (double e : estimates) var += (e - mean) * (e - mean) / (estimates.size() - 1);
  const double stderr_mean = std::sqrt(var / estimates.size());
  std::cout << "pair inner product: exact " << exact(1) << ", projected mean " << mean << " +- "
            << stderr_mean << "\n";
  EXPECT_LT(std::abs(mean - exact(1)), 4 * stderr_mean + 1e-9 * std::abs(exact(1)));

  // Error shrinks with dimension: the correlation of projected vs exact scores rises.
  double previous = -1;
  for (int64_t k : {4, 16, 64}) {
    Projection p(f.model->layout(), k, 11);
    Eigen::MatrixXd pg = p.ProjectColumns(g);
    Eigen::VectorXd approx = pg.transpose() * pg.col(0);
    const double r = Pearson(approx, exact);
    std::cout << "projection " << k << " per side (" << p.output_dim() << " dims): Pearson " << r << "\n";
    EXPECT_GT(r, previous);
    previous = r;
  }
  EXPECT_GT(previous, 0.9);
}

}  // namespace
}  // namespace tda
