// EK-FAC / K-FAC implementation checks on a real trained MLP: the factors equal an independent
// computation from captured activations and per-sample gradients, the preconditioner equals a
// dense Kronecker computation from the same factors, and bad inputs are refused clearly.
#include "curvature/ekfac.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <iostream>
#include <limits>
#include <memory>
#include <random>
#include <string>

#include "common/safetensors.h"
#include "curvature/exact.h"
#include "curvature/factor_fitting.h"
#include "curvature/gradient_dot.h"
#include "grad/per_sample_gradients.h"
#include "test_support.h"

namespace tda {
namespace {

using ::testing::HasSubstr;
using testing::StatusIs;

constexpr int64_t kSide = 7;  // 7x7 inputs: layer 0 is 16 x 50, small enough for dense
constexpr int64_t kFitSamples = 300;

struct Fixture {
  std::unique_ptr<Model> model;
  Dataset data;  // downsampled, first kFitSamples
  std::shared_ptr<const KroneckerFactors> factors;
};

// A tiny MLP trained for real, with empirical-Fisher factors fitted in several batches.
const Fixture& TrainedFixture() {
  static Fixture* fixture = [] {
    auto* f = new Fixture;
    testing::TinyModelSpec spec;
    spec.hidden = {16};
    spec.train_size = 1000;
    spec.epochs = 3;
    spec.input_side = kSide;
    f->model = testing::TrainTinyModel(spec);
    f->data = testing::Downsample(testing::FashionTrain(kFitSamples), kSide);
    if (f->model != nullptr) {
      FitOptions options;
      options.fisher = FisherKind::kEmpirical;
      options.batch_size = 64;  // several batches, the last one partial
      auto fitted = FitKroneckerFactors(*f->model, f->data, options);
      if (fitted.ok()) {
        f->factors = std::make_shared<const KroneckerFactors>(std::move(*fitted));
      } else {
        ADD_FAILURE() << fitted.status();
      }
    }
    return f;
  }();
  return *fixture;
}

// Dense (Q_S kron Q_A) diag(1 / (vec L + lambda)) (Q_S kron Q_A)^T for one layer, built
// explicitly: with row-major vec, vec(Q_S^T G Q_A) = (Q_S kron Q_A)^T vec(G).
Eigen::MatrixXd DenseKroneckerInverse(const LayerFactors& f, const Eigen::MatrixXd& eigenvalues,
                                      double damping) {
  const int64_t out = f.q_s.rows(), cols = f.q_a.rows();
  Eigen::MatrixXd k(out * cols, out * cols);
  for (int64_t i = 0; i < out; ++i)
    for (int64_t j = 0; j < cols; ++j)
      for (int64_t p = 0; p < out; ++p)
        for (int64_t q = 0; q < cols; ++q)
          k(i * cols + j, p * cols + q) = f.q_s(i, p) * f.q_a(j, q);
  Eigen::VectorXd inv(out * cols);
  for (int64_t p = 0; p < out; ++p)
    for (int64_t q = 0; q < cols; ++q) inv(p * cols + q) = 1.0 / (eigenvalues(p, q) + damping);
  return k * inv.asDiagonal() * k.transpose();
}

double MaxColumnRelativeError(const Eigen::MatrixXd& got, const Eigen::MatrixXd& want) {
  double worst = 0;
  for (int64_t c = 0; c < want.cols(); ++c) {
    worst = std::max(worst, (got.col(c) - want.col(c)).norm() / want.col(c).norm());
  }
  return worst;
}

TEST(Ekfac, FactorsEqualIndependentComputationFromCaptures) {
  const Fixture& fx = TrainedFixture();
  ASSERT_NE(fx.factors, nullptr);
  const KroneckerFactors& factors = *fx.factors;
  EXPECT_EQ(factors.examples, kFitSamples);
  EXPECT_EQ(factors.fisher, "empirical");
  auto capture = fx.model->Capture(fx.data.Rows(0, fx.data.size()));
  TDA_ASSERT_OK(capture);
  const RowMatrixXf grads = PerSampleGradients(*capture, fx.model->layout());
  const double n = static_cast<double>(fx.data.size());

  for (size_t l = 0; l < factors.layers.size(); ++l) {
    const TrackedLayer& layer = factors.layout.layers[l];
    const LayerFactors& f = factors.layers[l];
    const LayerCapture& c = capture->layers[l];
    Eigen::MatrixXd a_ref = Eigen::MatrixXd::Zero(layer.cols(), layer.cols());
    Eigen::MatrixXd s_ref = Eigen::MatrixXd::Zero(layer.out, layer.out);
    Eigen::MatrixXd corr_ref = Eigen::MatrixXd::Zero(layer.out, layer.cols());
    for (int64_t r = 0; r < fx.data.size(); ++r) {
      for (int64_t i = 0; i < layer.cols(); ++i)
        for (int64_t j = 0; j < layer.cols(); ++j)
          a_ref(i, j) += static_cast<double>(c.a(r, i)) * c.a(r, j) / n;
      for (int64_t i = 0; i < layer.out; ++i)
        for (int64_t j = 0; j < layer.out; ++j)
          s_ref(i, j) += static_cast<double>(c.g(r, i)) * c.g(r, j) / n;
      // The per-sample gradient from the grad module, rotated into the Kronecker eigenbasis.
      const Eigen::MatrixXd g =
          Eigen::Map<const RowMatrixXf>(grads.row(r).data() + layer.offset, layer.out, layer.cols())
              .cast<double>();
      corr_ref.array() += (f.q_s.transpose() * g * f.q_a).array().square() / n;
    }
    SCOPED_TRACE(layer.name);
    // The fit captured in batches of 64, the reference in one batch of 300: the float32
    // captures differ in the last bits (GEMM blocking), so agreement is to ~1e-8, not 1e-15.
    EXPECT_LT((f.a_cov - a_ref).norm() / a_ref.norm(), 1e-6);
    EXPECT_LT((f.s_cov - s_ref).norm() / s_ref.norm(), 1e-6);
    // Per-sample gradients are float32: agreement to float precision.
    EXPECT_LT((f.corrected - corr_ref).norm() / corr_ref.norm(), 1e-5);
    // The eigendecompositions reconstruct the factors with orthonormal bases.
    EXPECT_LT(
        (f.q_a * f.lambda_a.asDiagonal() * f.q_a.transpose() - f.a_cov).norm() / f.a_cov.norm(),
        1e-10);
    EXPECT_LT(
        (f.q_s * f.lambda_s.asDiagonal() * f.q_s.transpose() - f.s_cov).norm() / f.s_cov.norm(),
        1e-10);
    EXPECT_LT(
        (f.q_a.transpose() * f.q_a - Eigen::MatrixXd::Identity(layer.cols(), layer.cols())).norm(),
        1e-10);
    EXPECT_GE(f.lambda_a.minCoeff(), 0.0);
    EXPECT_GE(f.lambda_s.minCoeff(), 0.0);
    // Sum of EK-FAC eigenvalues = mean squared gradient norm of the layer (trace of its Fisher).
    const double trace =
        grads.middleCols(layer.offset, layer.size()).cast<double>().squaredNorm() / n;
    EXPECT_NEAR(f.corrected.sum(), trace, 1e-5 * trace);
  }
}

TEST(Ekfac, ekfac_inverse_matches_dense_kronecker_computation) {
  const Fixture& fx = TrainedFixture();
  ASSERT_NE(fx.factors, nullptr);
  const ParamLayout& layout = fx.factors->layout;
  // Test vectors: real per-sample gradients of other samples, and seeded Gaussian vectors.
  const Dataset probe = testing::Downsample(testing::FashionTrain(kFitSamples + 3), kSide);
  auto capture = fx.model->Capture(probe.Rows(kFitSamples, kFitSamples + 3));
  TDA_ASSERT_OK(capture);
  Eigen::MatrixXd v(layout.total(), 5);
  v.leftCols(3) = PerSampleGradientColumns(*capture, layout);
  std::mt19937_64 gen(7);
  std::normal_distribution<double> normal;
  for (int64_t i = 0; i < v.rows(); ++i) v(i, 3) = normal(gen), v(i, 4) = normal(gen);

  for (Method method : {Method::kEkfac, Method::kKfac}) {
    for (double relative : {0.1, 1e-3}) {
      SCOPED_TRACE(std::string(MethodName(method)) + " relative damping " +
                   std::to_string(relative));
      Damping damping;
      damping.relative = relative;
      auto pre = KroneckerPreconditioner::Create(fx.factors, method, damping);
      TDA_ASSERT_OK(pre);
      EXPECT_EQ((*pre)->method(), method);
      auto got = (*pre)->Apply(v);
      TDA_ASSERT_OK(got);
      Eigen::MatrixXd want(v.rows(), v.cols());
      for (size_t l = 0; l < layout.layers.size(); ++l) {
        const TrackedLayer& layer = layout.layers[l];
        const LayerFactors& f = fx.factors->layers[l];
        const Eigen::MatrixXd eig = method == Method::kEkfac
                                        ? f.corrected
                                        : Eigen::MatrixXd(f.lambda_s * f.lambda_a.transpose());
        const double lambda = relative * eig.mean();
        EXPECT_NEAR((*pre)->layer_damping()[l], lambda, 1e-12 * lambda);
        want.middleRows(layer.offset, layer.size()) =
            DenseKroneckerInverse(f, eig, lambda) * v.middleRows(layer.offset, layer.size());
      }
      const double err = MaxColumnRelativeError(*got, want);
      std::cout << MethodName(method) << " relative damping " << relative
                << ": max relative error vs dense Kronecker inverse " << err << "\n";
      EXPECT_LT(err, 1e-6);
      // Applying one column at a time gives the same answer as the batch.
      auto single = (*pre)->Apply(v.col(1));
      TDA_ASSERT_OK(single);
      EXPECT_LT((single->col(0) - got->col(1)).norm() / got->col(1).norm(), 1e-12);
    }
  }
}

// LoGra: factors fitted on the projected virtual layers describe projected gradients.
TEST(Ekfac, ProjectedFactorsDescribeProjectedGradients) {
  const Fixture& fx = TrainedFixture();
  ASSERT_NE(fx.model, nullptr);
  const Projection projection(fx.model->layout(), 8, /*seed=*/1);
  FitOptions options;
  options.fisher = FisherKind::kEmpirical;
  options.batch_size = 128;
  auto fitted = FitKroneckerFactors(*fx.model, fx.data, options, {}, &projection);
  TDA_ASSERT_OK(fitted);
  const ParamLayout& layout = fitted->layout;
  ASSERT_EQ(layout.total(), projection.output_dim());
  auto capture = fx.model->Capture(fx.data.Rows(0, fx.data.size()));
  TDA_ASSERT_OK(capture);
  const RowMatrixXf projected = projection.ProjectCapture(*capture);  // samples x output_dim
  for (size_t l = 0; l < layout.layers.size(); ++l) {
    const TrackedLayer& layer = layout.layers[l];
    const LayerFactors& f = fitted->layers[l];
    Eigen::MatrixXd want = Eigen::MatrixXd::Zero(layer.out, layer.cols());
    for (int64_t r = 0; r < fx.data.size(); ++r) {
      const Eigen::MatrixXd g = Eigen::Map<const RowMatrixXf>(
                                    projected.row(r).data() + layer.offset, layer.out, layer.cols())
                                    .cast<double>();
      want.array() += (f.q_s.transpose() * g * f.q_a).array().square() / fx.data.size();
    }
    SCOPED_TRACE(layer.name);
    EXPECT_LT((f.corrected - want).norm() / want.norm(), 1e-5);
  }
  auto pre = KroneckerPreconditioner::Create(
      std::make_shared<const KroneckerFactors>(std::move(*fitted)), Method::kEkfac, Damping{});
  TDA_ASSERT_OK(pre);
  TDA_ASSERT_OK((*pre)->Apply(projected.topRows(2).transpose().cast<double>()));
}

TEST(Ekfac, AbsoluteDampingOverridesRelativeAndRoundTripsThroughFile) {
  const Fixture& fx = TrainedFixture();
  ASSERT_NE(fx.factors, nullptr);
  Damping damping;
  damping.absolute = 0.25;
  auto pre = KroneckerPreconditioner::Create(fx.factors, Method::kEkfac, damping);
  TDA_ASSERT_OK(pre);
  for (double d : (*pre)->layer_damping()) EXPECT_EQ(d, 0.25);

  testing::TempDir dir;
  TDA_ASSERT_OK(SaveFactors(*fx.factors, dir.file("factors.safetensors")));
  auto loaded = LoadFactors(dir.file("factors.safetensors"));
  TDA_ASSERT_OK(loaded);
  EXPECT_EQ(loaded->examples, fx.factors->examples);
  EXPECT_EQ(loaded->fisher, "empirical");
  ASSERT_EQ(loaded->layout.layers.size(), fx.factors->layout.layers.size());
  for (size_t l = 0; l < loaded->layers.size(); ++l) {
    const TrackedLayer& a = loaded->layout.layers[l];
    const TrackedLayer& b = fx.factors->layout.layers[l];
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.out, b.out);
    EXPECT_EQ(a.in, b.in);
    EXPECT_EQ(a.offset, b.offset);
    EXPECT_EQ(loaded->layers[l].q_a, fx.factors->layers[l].q_a);  // bit-exact
    EXPECT_EQ(loaded->layers[l].corrected, fx.factors->layers[l].corrected);
    EXPECT_EQ(loaded->layers[l].lambda_s, fx.factors->layers[l].lambda_s);
  }
  auto reloaded = KroneckerPreconditioner::Create(
      std::make_shared<const KroneckerFactors>(std::move(*loaded)), Method::kEkfac, damping);
  TDA_ASSERT_OK(reloaded);
  const Eigen::MatrixXd v = Eigen::MatrixXd::Ones(fx.factors->layout.total(), 2);
  EXPECT_EQ(*(*pre)->Apply(v), *(*reloaded)->Apply(v));
}

TEST(Ekfac, TrueFisherSamplesLabelsReproducibly) {
  const Fixture& fx = TrainedFixture();
  ASSERT_NE(fx.model, nullptr);
  FitOptions options;  // kTrue by default
  options.max_examples = 100;
  options.batch_size = 40;
  options.seed = 3;
  std::vector<std::string> stages;
  auto first = FitKroneckerFactors(
      *fx.model, fx.data, options,
      [&](std::string_view stage, int64_t done, int64_t total, std::string_view) {
        if (done == total) stages.emplace_back(stage);
      });
  auto second = FitKroneckerFactors(*fx.model, fx.data, options);
  TDA_ASSERT_OK(first);
  TDA_ASSERT_OK(second);
  EXPECT_EQ(first->fisher, "true");
  EXPECT_EQ(first->examples, 100);
  EXPECT_EQ(stages, (std::vector<std::string>{"covariance", "eigen-correction"}));
  EXPECT_EQ(first->layers[1].s_cov, second->layers[1].s_cov);
  EXPECT_EQ(first->layers[1].corrected, second->layers[1].corrected);
  options.seed = 4;
  auto other = FitKroneckerFactors(*fx.model, fx.data, options);
  TDA_ASSERT_OK(other);
  EXPECT_NE(first->layers[1].s_cov, other->layers[1].s_cov);
  // A depends only on the inputs, not on the labels.
  EXPECT_LT((first->layers[0].a_cov - other->layers[0].a_cov).norm(), 1e-12);

  // Sampled labels follow the given distribution.
  Eigen::MatrixXf probs(20000, 3);
  probs.col(0).setConstant(0.2f);
  probs.col(1).setConstant(0.0f);
  probs.col(2).setConstant(0.8f);
  std::vector<int32_t> labels = SampleLabels(probs, 11);
  EXPECT_EQ(labels, SampleLabels(probs, 11));
  int64_t counts[3] = {0, 0, 0};
  for (int32_t y : labels) counts[y]++;
  EXPECT_EQ(counts[1], 0);
  EXPECT_NEAR(counts[0] / 20000.0, 0.2, 0.015);
}

TEST(Ekfac, RefusesBadDampingFactorsAndGradients) {
  const Fixture& fx = TrainedFixture();
  ASSERT_NE(fx.factors, nullptr);
  Damping negative;
  negative.relative = -0.1;
  EXPECT_THAT(KroneckerPreconditioner::Create(fx.factors, Method::kEkfac, negative),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("damping")));
  Damping negative_abs;
  negative_abs.absolute = -1.0;
  EXPECT_THAT(KroneckerPreconditioner::Create(fx.factors, Method::kKfac, negative_abs),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("-1")));
  Damping nan;
  nan.absolute = std::nan("");
  EXPECT_THAT(KroneckerPreconditioner::Create(fx.factors, Method::kEkfac, nan),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("damping")));
  EXPECT_THAT(KroneckerPreconditioner::Create(fx.factors, Method::kLissa, Damping{}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("ekfac or kfac")));

  // Zero damping with a zero eigenvalue (the bias column of A is never zero, but a dead input
  // pixel is): build a factor set with an exactly zero eigenvalue.
  auto zero = std::make_shared<KroneckerFactors>(*fx.factors);
  zero->layers[1].corrected(0, 0) = 0.0;
  Damping none;
  none.absolute = 0.0;
  EXPECT_THAT(KroneckerPreconditioner::Create(zero, Method::kEkfac, none),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("damped eigenvalue is zero")));

  // NaN in a factor is refused before the eigendecomposition, naming the layer.
  KroneckerFactors broken = *fx.factors;
  broken.layers[1].a_cov(2, 3) = std::nan("");
  EXPECT_THAT(DecomposeFactors(&broken), StatusIs(absl::StatusCode::kFailedPrecondition,
                                                  HasSubstr(broken.layout.layers[1].name)));
  broken = *fx.factors;
  broken.layers[0].s_cov(0, 0) = std::numeric_limits<double>::infinity();
  EXPECT_THAT(DecomposeFactors(&broken),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr(broken.layout.layers[0].name + ": gradient covariance S")));
  broken = *fx.factors;
  broken.layers[0].a_cov.resize(3, 3);
  EXPECT_THAT(DecomposeFactors(&broken),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("expected 50x50")));

  // Gradients of the wrong dimension or with NaN.
  auto pre = KroneckerPreconditioner::Create(fx.factors, Method::kEkfac, Damping{});
  TDA_ASSERT_OK(pre);
  const int64_t d = fx.factors->layout.total();
  EXPECT_THAT((*pre)->Apply(Eigen::MatrixXd::Ones(d + 1, 1)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("expected " + std::to_string(d) + " gradient rows, got " +
                                 std::to_string(d + 1))));
  Eigen::MatrixXd with_nan = Eigen::MatrixXd::Ones(d, 2);
  with_nan(5, 1) = std::nan("");
  EXPECT_THAT((*pre)->Apply(with_nan),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("NaN")));
  GradientDotPreconditioner dot(d);
  EXPECT_THAT(
      dot.Apply(Eigen::MatrixXd::Ones(d - 1, 1)),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("got " + std::to_string(d - 1))));
  EXPECT_EQ(*dot.Apply(Eigen::MatrixXd::Ones(d, 2)), Eigen::MatrixXd::Ones(d, 2));
}

TEST(Ekfac, ExactCurvatureRefusesLargeModelsAndIndefiniteMatrices) {
  ModelConfig config;
  config.hidden = {32};  // 785 * 32 + 33 * 10 = 25450 parameters
  auto model = CreateModel(config, 0);
  TDA_ASSERT_OK(model);
  EXPECT_THAT(GaussNewtonMatrix(**model, testing::FashionTrain(10)),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("model has 25450 parameters, limit 20000")));
  const Eigen::MatrixXd indefinite = -Eigen::MatrixXd::Identity(4, 4);
  EXPECT_THAT(ExactPreconditioner::Create(indefinite, 0.5),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not positive definite")));
  EXPECT_THAT(ExactPreconditioner::Create(Eigen::MatrixXd::Identity(4, 4), -1.0),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("damping")));
  EXPECT_THAT(ExactPreconditioner::Create(Eigen::MatrixXd::Identity(4, 3), 1.0),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("square")));
  auto exact = ExactPreconditioner::Create(Eigen::MatrixXd::Identity(4, 4), 1.0);
  TDA_ASSERT_OK(exact);
  EXPECT_TRUE((*exact)
                  ->Apply(Eigen::MatrixXd::Ones(4, 1))
                  ->isApprox(Eigen::MatrixXd::Constant(4, 1, 0.5), 1e-14));
  EXPECT_THAT((*exact)->Apply(Eigen::MatrixXd::Ones(5, 1)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("expected 4")));
}

TEST(Ekfac, LoadFactorsRefusesTruncatedCorruptedAndMismatchedFiles) {
  const Fixture& fx = TrainedFixture();
  ASSERT_NE(fx.factors, nullptr);
  testing::TempDir dir;
  const std::string path = dir.file("factors.safetensors");
  TDA_ASSERT_OK(SaveFactors(*fx.factors, path));
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto write = [&](const std::string& name, const std::string& content) {
    std::ofstream(dir.file(name), std::ios::binary) << content;
    return dir.file(name);
  };
  EXPECT_THAT(LoadFactors(write("truncated", bytes.substr(0, bytes.size() / 2))),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("truncated")));
  std::string corrupt = bytes;
  corrupt[12] = '\x01';  // inside the JSON header
  EXPECT_THAT(LoadFactors(write("corrupt", corrupt)),
              StatusIs(absl::StatusCode::kDataLoss, ::testing::_));
  EXPECT_THAT(LoadFactors(write("empty", "")), StatusIs(absl::StatusCode::kDataLoss, ::testing::_));
  EXPECT_THAT(LoadFactors(dir.file("missing")),
              StatusIs(absl::StatusCode::kNotFound, ::testing::_));

  // A well-formed safetensors file whose tensors do not match the layout in its metadata.
  auto file = SafetensorsFile::Read(path);
  TDA_ASSERT_OK(file);
  const std::string victim = fx.factors->layout.layers[1].name + ".corrected";
  auto rewrite = [&](bool drop, bool nan) {
    SafetensorsWriter writer;
    for (const std::string& name : (*file)->names()) {
      TensorView view = *(*file)->Get(name);
      std::string data(view.bytes);
      if (name == victim && drop) continue;
      std::vector<int64_t> shape = view.shape;
      if (name == victim && !nan) shape = {shape[1], shape[0]};  // transposed shape
      if (name == victim && nan) {
        const double bad = std::nan("");
        std::memcpy(data.data(), &bad, sizeof(bad));
      }
      writer.Add(name, view.dtype, shape, data.data());
    }
    for (const auto& [key, value] : (*file)->metadata()) writer.SetMetadata(key, value);
    return writer.Serialize();
  };
  EXPECT_THAT(LoadFactors(write("shape", rewrite(false, false))),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr(victim)));
  EXPECT_THAT(LoadFactors(write("dropped", rewrite(true, false))),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr(victim + "' is missing")));
  EXPECT_THAT(LoadFactors(write("nan", rewrite(false, true))),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("NaN")));
}

TEST(Ekfac, MethodNamesRoundTrip) {
  for (Method m :
       {Method::kEkfac, Method::kKfac, Method::kGradientDot, Method::kExact, Method::kLissa}) {
    auto parsed = ParseMethod(MethodName(m));
    TDA_ASSERT_OK(parsed);
    EXPECT_EQ(*parsed, m);
  }
  EXPECT_THAT(ParseMethod("newton"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("newton")));
}

}  // namespace
}  // namespace tda
