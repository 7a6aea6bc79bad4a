// Index-build gradient throughput against a plain training step, measured in the same process.
//   gradient_bench [--hidden 128] [--batch 512] [--projection 32] [--batches 40]
// Baseline: forward + backward + Adam step of the same MLP on the same batches (samples/s).
// Measured: Capture (forward + backward to layer outputs) + Kronecker projection of per-sample
// gradients (samples/s), the work the index build does per training sample.
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "data/fashion_mnist.h"
#include "grad/projection.h"
#include "model/model.h"
#include "model/trainer.h"

int main(int argc, char** argv) {
  int64_t hidden = 128, batch = 512, projection = 32, batches = 40;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--hidden")) hidden = std::atoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--batch")) batch = std::atoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--projection")) projection = std::atoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--batches")) batches = std::atoll(argv[i + 1]);
  }
  tda::InitCompute();
  auto data = tda::LoadFashionMnist(tda::kFashionMnistDefaultDir, tda::Split::kTrain, batch * batches).value();
  tda::ModelConfig config;
  config.hidden = {hidden};
  auto model = tda::CreateModel(config, 0).value();
  tda::TrainRecipe recipe;
  recipe.epochs = 1;
  recipe.batch_size = batch;
  auto t = std::chrono::steady_clock::now();
  if (!tda::Train(*model, data, recipe).ok()) return 1;
  const double train_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();

  tda::Projection proj(model->layout(), projection, 0);
  t = std::chrono::steady_clock::now();
  double checksum = 0;
  for (int64_t b = 0; b < batches; ++b) {
    auto capture = model->Capture(data.Rows(b * batch, (b + 1) * batch)).value();
    tda::RowMatrixXf rows = proj.ProjectCapture(capture);
    checksum += rows(0, 0);
  }
  const double grad_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  const double n = static_cast<double>(batch * batches);
  std::printf("model 784-%lld-10, batch %lld, projection %lld per side (%lld dims)  [%g]\n",
              static_cast<long long>(hidden), static_cast<long long>(batch),
              static_cast<long long>(projection), static_cast<long long>(proj.output_dim()), checksum);
  std::printf("training step:               %9.0f samples/s\n", n / train_s);
  std::printf("per-sample projected grads:  %9.0f samples/s  = %.2f x slower than training\n", n / grad_s,
              grad_s / train_s);
  return 0;
}
