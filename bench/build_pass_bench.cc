// Index-build time against one training epoch of the same model on the same rows: the
// three-pass build (covariances, eigenvalue correction, gradients) and the fused build
// (covariances, then one pass for the correction and the rows: index/fused_gradient_pass.h), with
// the time of each pass and, on the first batches, where a pass's time goes.
//   build_pass_bench [--documents N] [--threads T] [--dir DIR] [--profile-batches K]
// The model is the default `tda train --model-kind gpt` shape (context 256, width 64, 4 blocks,
// 4 heads, MLP 256, tied head), trained for one epoch (batch 32, AdamW, cosine) on the first N
// training fortunes: that epoch is the baseline. Both builds index those N documents with the
// default build options (32 x 32 per layer, bf16, batch 32, true Fisher).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "curvature/factor_fitting.h"
#include "data/dataset_rows.h"
#include "data/fortunes.h"
#include "grad/per_sample_gradients.h"
#include "grad/projection.h"
#include "index/index_builder.h"
#include "model/model.h"
#include "model/trainer.h"

namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

struct BuildTimes {
  double total = 0;
  std::map<std::string, double> stage_seconds;  // first to last report of each stage
  std::vector<std::string> stages;              // in order
};

BuildTimes TimedBuild(const tda::Dataset& train, const tda::IndexBuildOptions& options) {
  BuildTimes times;
  std::map<std::string, Clock::time_point> first;
  const Clock::time_point start = Clock::now();
  Clock::time_point last_end = start;
  std::string current;
  const tda::ProgressFn progress = [&](std::string_view stage, int64_t, int64_t, std::string_view) {
    const std::string name(stage);
    if (name != current) {  // a stage starts where the previous one's last report was
      first[name] = last_end;
      times.stages.push_back(name);
      current = name;
    }
    last_end = Clock::now();
    times.stage_seconds[name] = std::chrono::duration<double>(last_end - first[name]).count();
  };
  const absl::Status status = tda::BuildIndex(train, tda::kFortunesDefaultDir, options, progress);
  if (!status.ok()) {
    std::fprintf(stderr, "build failed: %s\n", status.ToString().c_str());
    std::exit(1);
  }
  times.total = Since(start);
  return times;
}

void PrintBuild(const char* name, const BuildTimes& t, double epoch) {
  std::printf("%-10s %8.1f s  %5.2f x epoch  (", name, t.total, t.total / epoch);
  for (size_t i = 0; i < t.stages.size(); ++i) {
    std::printf("%s%s %.1f s", i ? ", " : "", t.stages[i].c_str(), t.stage_seconds.at(t.stages[i]));
  }
  std::printf(")\n");
}

// Where a pass's time goes, per batch of the capture order, averaged over `batches` batches.
void Profile(const tda::Model& model, const tda::Dataset& train, const std::string& index_dir,
             int64_t batch_size, int64_t batches) {
  const tda::DatasetRows rows(train);
  const tda::Projection projection(model.layout(), 32, 0);
  const tda::KroneckerFactors factors =
      tda::LoadFactors(index_dir + "/factors.safetensors").value();
  tda::FitOptions fit;
  fit.batch_size = batch_size;
  const std::vector<int64_t> order =
      tda::CaptureOrder(rows, 0, std::min(train.size(), batches * batch_size), batch_size);
  std::map<std::string, double> seconds;
  std::vector<std::string> names;
  auto timed = [&](const std::string& name, auto&& fn) {
    const Clock::time_point t = Clock::now();
    fn();
    if (!seconds.count(name)) names.push_back(name);
    seconds[name] += Since(t);
  };
  tda::RowStorage storage;
  int64_t done = 0;
  double checksum = 0;
  for (int64_t begin = 0; begin + batch_size <= static_cast<int64_t>(order.size());
       begin += batch_size, ++done) {
    const tda::Batch batch = tda::GatherCut(rows, order.data() + begin, batch_size, &storage);
    timed("forward (Predict)", [&] { checksum += model.Predict(batch).value()(0, 0); });
    tda::BatchCapture own_raw;
    timed("forward + backward + capture copies (Capture)",
          [&] { own_raw = model.Capture(batch).value(); });
    tda::BatchCapture sides;
    timed("project capture sides", [&] { sides = projection.ProjectCaptureSides(own_raw); });
    timed("per-sample rows from sides",
          [&] { checksum += tda::PerSampleGradients(sides, projection.projected_layout())(0, 0); });
    tda::BatchCapture own;
    tda::BatchCapture sampled;
    timed("fused: 1 forward + 2 backward + copies + projection (CaptureForFit, own)", [&] {
      sampled = tda::CaptureForFit(model, batch, fit, begin, &projection, &own).value();
    });
    tda::KroneckerFactors scratch = factors;
    timed("eigenbasis rotation + correction (AddEigenCorrection)",
          [&] { tda::AddEigenCorrection(sampled, rows, order.data() + begin, &scratch); });
  }
  std::printf("\nper batch of %lld documents (mean of %lld, capture order)  [%g]\n",
              static_cast<long long>(batch_size), static_cast<long long>(done), checksum);
  for (const std::string& name : names) {
    std::printf("  %-80s %8.1f ms\n", name.c_str(), 1e3 * seconds[name] / done);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int64_t documents = 2000, threads = 0, profile_batches = 8;
  std::string dir = "/tmp/build_pass_bench";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--documents")
      documents = std::atoll(argv[i + 1]);
    else if (flag == "--threads")
      threads = std::atoll(argv[i + 1]);
    else if (flag == "--dir")
      dir = argv[i + 1];
    else if (flag == "--profile-batches")
      profile_batches = std::atoll(argv[i + 1]);
    else {
      std::fprintf(stderr,
                   "usage: build_pass_bench [--documents N] [--threads T] [--dir DIR] "
                   "[--profile-batches K]\n");
      return 2;
    }
  }
  tda::InitCompute(static_cast<int>(threads));
  const tda::ModelConfig config = tda::GptConfig(/*context_length=*/256, /*d_model=*/64,
                                                 /*layers=*/4, /*heads=*/4, /*mlp_width=*/256,
                                                 /*tied_head=*/true);
  tda::TextSplitOptions split;
  split.context_length = config.context_length;
  split.limit = documents;  // the first N training documents (0: all)
  absl::StatusOr<tda::Dataset> loaded =
      tda::LoadFortunes(tda::kFortunesDefaultDir, tda::Split::kTrain, split);
  if (!loaded.ok()) {
    std::fprintf(stderr, "%s\n", loaded.status().ToString().c_str());
    return 1;
  }
  const tda::Dataset& train = *loaded;
  tda::TrainRecipe recipe = tda::FortunesAdamWRecipe();
  recipe.epochs = 1;
  recipe.batch_size = 32;
  recipe.warmup_steps = 10;
  recipe.data_dir = tda::kFortunesDefaultDir;
  std::unique_ptr<tda::Model> model = tda::CreateModel(config, 0).value();
  const Clock::time_point t = Clock::now();
  const tda::TrainReport report = tda::Train(*model, train, recipe).value();
  const double epoch = Since(t);
  std::filesystem::create_directories(dir);
  const std::string model_dir = dir + "/model";
  if (absl::Status saved = model->Save(model_dir, recipe); !saved.ok()) {
    std::fprintf(stderr, "%s\n", saved.ToString().c_str());
    return 1;
  }
  std::printf("gpt 4 x 64, context 256, %lld fortunes, %lld thread(s)\n",
              static_cast<long long>(train.size()), static_cast<long long>(threads));
  std::printf("one training epoch: %.1f s (batch 32, loss %.3f)\n", epoch, report.final_epoch_loss);
  tda::IndexBuildOptions options;
  options.model_dir = model_dir;
  options.dtype = tda::RowDType::kBF16;
  options.fit.batch_size = 0;  // the build's batch size, as `tda index build` sets it
  options.out_dir = dir + "/three-pass";
  options.fused_pass = false;
  const BuildTimes three = TimedBuild(train, options);
  PrintBuild("three-pass", three, epoch);
  options.out_dir = dir + "/fused";
  options.fused_pass = true;
  const BuildTimes fused = TimedBuild(train, options);
  PrintBuild("fused", fused, epoch);
  std::printf("fused / three-pass: %.3f\n", fused.total / three.total);
  if (profile_batches > 0) {
    Profile(*model, train, options.out_dir, tda::DefaultBatchSize(config), profile_batches);
  }
  return 0;
}
