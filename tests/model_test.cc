// The MLP trains for real on Fashion-MNIST, saves to safetensors with PyTorch names and loads
// back bit-identical; bad configs are refused; LibTorch runs on OpenBLAS, not reference BLAS.
#include <fstream>

#include "common/atomic_file.h"
#include "common/safetensors.h"
#include "model/model.h"
#include "model/trainer.h"
#include "test_support.h"

namespace tda {
namespace {

using ::testing::HasSubstr;
using testing::StatusIs;
using testing::TempDir;

TEST(Model, TrainsToUsefulAccuracyAndRoundTripsThroughSafetensors) {
  testing::TinyModelSpec spec;
  spec.hidden = {64};
  spec.train_size = 5000;
  spec.epochs = 3;
  TrainRecipe recipe;
  std::unique_ptr<Model> model = testing::TrainTinyModel(spec, &recipe);
  ASSERT_NE(model, nullptr);
  auto eval = Evaluate(*model, testing::FashionTest(2000));
  TDA_ASSERT_OK(eval);
  std::cout << "784-64-10 on 5000 images, 3 epochs: test accuracy " << eval->accuracy << ", loss "
            << eval->mean_loss << "\n";
  EXPECT_GT(eval->accuracy, 0.75);  // chance is 0.10

  TempDir dir;
  TDA_ASSERT_OK(model->Save(dir.path(), recipe));
  auto weights = SafetensorsFile::Read(dir.file("model.safetensors"));
  TDA_ASSERT_OK(weights);
  EXPECT_TRUE((*weights)->Get("layers.0.weight", DType::kF32, {64, 784}).ok());
  EXPECT_TRUE((*weights)->Get("layers.1.bias", DType::kF32, {10}).ok());

  TrainRecipe loaded_recipe;
  auto loaded = LoadModel(dir.path(), &loaded_recipe);
  TDA_ASSERT_OK(loaded);
  EXPECT_EQ((*loaded)->Fingerprint(), model->Fingerprint());
  EXPECT_EQ((*loaded)->Parameters(), model->Parameters());
  EXPECT_EQ(loaded_recipe.epochs, recipe.epochs);
  EXPECT_EQ(loaded_recipe.train_size, recipe.train_size);
  const Dataset& test = testing::FashionTest(50);
  EXPECT_EQ((*loaded)->Predict(test.Rows(0, 50)).value(), model->Predict(test.Rows(0, 50)).value());
}

TEST(Model, TrainingIsDeterministicForASeed) {
  testing::TinyModelSpec spec;
  spec.train_size = 500;
  spec.epochs = 1;
  auto a = testing::TrainTinyModel(spec);
  auto b = testing::TrainTinyModel(spec);
  spec.seed = 1;
  auto c = testing::TrainTinyModel(spec);
  EXPECT_EQ(a->Fingerprint(), b->Fingerprint());
  EXPECT_NE(a->Fingerprint(), c->Fingerprint());
}

TEST(Model, SetParametersRoundTripsAndRejectsBadVectors) {
  auto model = CreateModel(ModelConfig{}, 3);
  TDA_ASSERT_OK(model);
  Eigen::VectorXf p = (*model)->Parameters();
  EXPECT_EQ(p.size(), (*model)->layout().total());
  EXPECT_EQ(p.size(), 128 * 785 + 10 * 129);
  Eigen::VectorXf q = p * 0.5f;
  TDA_ASSERT_OK((*model)->SetParameters(q));
  EXPECT_EQ((*model)->Parameters(), q);
  EXPECT_THAT((*model)->SetParameters(Eigen::VectorXf::Zero(3)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("3 entries")));
  q[0] = std::nanf("");
  EXPECT_THAT((*model)->SetParameters(q), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("NaN")));
}

TEST(Model, RefusesBadConfigsAndCorruptWeights) {
  ModelConfig bad;
  bad.hidden = {0};
  EXPECT_THAT(CreateModel(bad, 0), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("width 0")));
  bad = ModelConfig{};
  bad.kind = "resnet";
  EXPECT_THAT(CreateModel(bad, 0), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("resnet")));

  auto model = CreateModel(ModelConfig{}, 0);
  TempDir dir;
  TDA_ASSERT_OK((*model)->Save(dir.path(), TrainRecipe{}));
  // Truncate the weights file.
  std::string bytes;
  TDA_ASSERT_OK(ReadFile(dir.file("model.safetensors"), &bytes));
  std::ofstream(dir.file("model.safetensors"), std::ios::binary | std::ios::trunc)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  EXPECT_THAT(LoadModel(dir.path()), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("model.safetensors")));
  EXPECT_THAT(LoadModel("/nonexistent"), StatusIs(absl::StatusCode::kNotFound, HasSubstr("config.json")));
}

TEST(Model, LibTorchUsesOpenBlas) {
  // Debian's LibTorch calls whatever libblas.so.3 is selected; the reference BLAS is ~30x
  // slower. scripts/setup installs libopenblas0-pthread: check it is what got loaded.
  auto model = CreateModel(ModelConfig{}, 0);
  const Dataset& test = testing::FashionTest(256);
  TDA_ASSERT_OK((*model)->Predict(test.Rows(0, 256)));
  std::ifstream maps("/proc/self/maps");
  std::string line;
  bool openblas = false, reference = false;
  while (std::getline(maps, line)) {
    openblas |= line.find("openblas") != std::string::npos;
    reference |= line.find("/blas/libblas.so") != std::string::npos;
  }
  EXPECT_TRUE(openblas) << "libblas.so.3 does not resolve to OpenBLAS: install libopenblas0-pthread";
  EXPECT_FALSE(reference) << "the reference BLAS is loaded";
}

}  // namespace
}  // namespace tda
