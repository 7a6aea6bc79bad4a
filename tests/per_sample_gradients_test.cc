// Per-sample gradients from the a/g capture must equal the parameter gradients of a
// batch-size-1 backward pass through an independent LibTorch forward of the same weights.
#include <torch/torch.h>

#include "common/safetensors.h"
#include "grad/per_sample_gradients.h"
#include "model/model.h"
#include "test_support.h"

namespace tda {
namespace {

using testing::FashionTrain;
using testing::TempDir;

// Batch-size-1 gradient through a plain LibTorch MLP built from the saved safetensors file,
// flattened in ParamLayout order ([W | b] row-major per layer).
Eigen::VectorXf ReferenceGradient(const SafetensorsFile& weights, const ParamLayout& layout,
                                  const float* x, int64_t input_dim, int32_t label) {
  std::vector<torch::Tensor> w, b;
  for (const TrackedLayer& layer : layout.layers) {
    auto wv = weights.Get(layer.name + ".weight").value();
    auto bv = weights.Get(layer.name + ".bias").value();
    w.push_back(torch::from_blob(const_cast<char*>(wv.bytes.data()), {layer.out, layer.in})
                    .clone()
                    .set_requires_grad(true));
    b.push_back(torch::from_blob(const_cast<char*>(bv.bytes.data()), {layer.out}).clone().set_requires_grad(true));
  }
  torch::Tensor h = torch::from_blob(const_cast<float*>(x), {1, input_dim}).clone();
  for (size_t i = 0; i < w.size(); ++i) {
    h = torch::nn::functional::linear(h, w[i], b[i]);
    if (i + 1 < w.size()) h = torch::relu(h);
  }
  torch::Tensor loss = torch::nn::functional::cross_entropy(h, torch::tensor({int64_t{label}}));
  loss.backward();
  Eigen::VectorXf flat(layout.total());
  for (size_t i = 0; i < w.size(); ++i) {
    const TrackedLayer& layer = layout.layers[i];
    Eigen::Map<RowMatrixXf> block(flat.data() + layer.offset, layer.out, layer.cols());
    block.leftCols(layer.in) = Eigen::Map<RowMatrixXf>(w[i].grad().data_ptr<float>(), layer.out, layer.in);
    block.col(layer.in) = Eigen::Map<Eigen::VectorXf>(b[i].grad().data_ptr<float>(), layer.out);
  }
  return flat;
}

TEST(PerSampleGradients, EqualBatchSizeOneBackwardOnTrainedMlp) {
  testing::TinyModelSpec spec;
  spec.hidden = {32, 16};
  spec.train_size = 2000;
  spec.epochs = 2;
  std::unique_ptr<Model> model = testing::TrainTinyModel(spec);
  ASSERT_NE(model, nullptr);
  TempDir dir;
  TDA_ASSERT_OK(model->Save(dir.path(), TrainRecipe{}));
  auto weights = SafetensorsFile::Read(dir.file("model.safetensors"));
  TDA_ASSERT_OK(weights);

  const Dataset& data = FashionTrain(64);
  auto capture = model->Capture(data.Rows(0, data.size()));
  TDA_ASSERT_OK(capture);
  RowMatrixXf grads = PerSampleGradients(*capture, model->layout());
  ASSERT_EQ(grads.rows(), 64);
  ASSERT_EQ(grads.cols(), model->layout().total());

  double worst = 0;
  for (int64_t i = 0; i < data.size(); ++i) {
    Eigen::VectorXf expected = ReferenceGradient(**weights, model->layout(), data.row(i),
                                                 data.feature_dim, data.labels[i]);
    const double rel = (grads.row(i).transpose() - expected).cwiseAbs().maxCoeff() /
                       std::max(1e-12f, expected.cwiseAbs().maxCoeff());
    worst = std::max(worst, rel);
  }
  std::cout << "max relative error of per-sample gradients vs batch-size-1 backward: " << worst << "\n";
  RecordProperty("max_relative_error", std::to_string(worst));
  EXPECT_LT(worst, 1e-5);
  // The column (float64) form is the same matrix, transposed.
  Eigen::MatrixXd cols = PerSampleGradientColumns(*capture, model->layout());
  EXPECT_LT((cols.transpose() - grads.cast<double>()).cwiseAbs().maxCoeff(), 1e-12);
}

TEST(PerSampleGradients, CaptureLossesMatchPredictedProbabilities) {
  testing::TinyModelSpec spec;
  spec.train_size = 500;
  spec.epochs = 1;
  std::unique_ptr<Model> model = testing::TrainTinyModel(spec);
  ASSERT_NE(model, nullptr);
  const Dataset& data = FashionTrain(32);
  auto capture = model->Capture(data.Rows(0, data.size()));
  auto probs = model->Predict(data.Rows(0, data.size()));
  TDA_ASSERT_OK(capture);
  TDA_ASSERT_OK(probs);
  for (int64_t i = 0; i < data.size(); ++i) {
    EXPECT_NEAR(capture->losses[i], -std::log((*probs)(i, data.labels[i])), 1e-5);
  }
}

TEST(PerSampleGradients, RejectsBadLabelsAndNonFiniteInputs) {
  auto model = CreateModel(ModelConfig{}, 0);
  TDA_ASSERT_OK(model);
  std::vector<float> x(784, 0.5f);
  int32_t bad_label = 10;
  EXPECT_THAT((*model)->Capture(Batch::Classification(x.data(), &bad_label, 1)),
              testing::StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("label 10")));
  x[3] = std::nanf("");
  int32_t label = 1;
  EXPECT_THAT((*model)->Capture(Batch::Classification(x.data(), &label, 1)),
              testing::StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("not finite")));
}

}  // namespace
}  // namespace tda
