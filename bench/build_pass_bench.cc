// Index-build time against one training epoch of the same model on the same rows: the
// three-pass build (covariances, eigenvalue correction, gradients) and the fused build
// (covariances, then one pass for the correction and the rows: index/fused_gradient_pass.h), with
// the time of each pass and, on the first batches, where a pass's time goes.
//   build_pass_bench [--documents N] [--threads T] [--dir DIR] [--profile-batches K]
//                    [--three-pass 0|1] [--factor-examples F[,F...]] [--queries Q]
// The model is the default `tda train --model-kind gpt` shape (context 256, width 64, 4 blocks,
// 4 heads, MLP 256, tied head), trained for one epoch (batch 32, AdamW, cosine) on the first N
// training fortunes: that epoch is the baseline. Both builds index those N documents with the
// default build options (32 x 32 per layer, bf16, batch 32, true Fisher).
// --factor-examples: also a fused build per F whose factors are fitted on F documents (spread
// over the corpus, FitWindowStarts), and how its EK-FAC scores agree with the build fitted on
// every document: Spearman over all rows and top-10 overlap, for Q held-out fortunes (each split
// at its middle into prompt and completion).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "attribution/attributor.h"
#include "common/statistics.h"
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

// The held-out fortunes [0, count) as text queries (cut to fit the context): each split at its
// middle byte.
std::vector<tda::Query> HeldOutQueries(int64_t count, int64_t context) {
  tda::TextSplitOptions split;
  split.context_length = context;
  split.limit = count;
  const tda::Dataset test =
      tda::LoadFortunes(tda::kFortunesDefaultDir, tda::Split::kTest, split).value();
  std::vector<tda::Query> queries;
  for (std::string text : test.previews) {
    text.resize(std::min<size_t>(text.size(), context - 2));  // the query fits the context
    if (text.size() < 2) continue;
    tda::Query query;
    query.text = tda::TextQuery{text.substr(0, text.size() / 2), text.substr(text.size() / 2)};
    queries.push_back(std::move(query));
  }
  return queries;
}

// Every row's EK-FAC score (rows x queries) and each query's top 10 rows.
struct QueryScores {
  Eigen::MatrixXd scores;
  std::vector<std::vector<int64_t>> top;
};

QueryScores ScoreQueries(const std::string& index_dir, const std::vector<tda::Query>& queries) {
  std::unique_ptr<tda::Attributor> attributor = tda::Attributor::Open(index_dir).value();
  tda::AttributeOptions options;
  options.top_k = 10;
  options.return_scores = true;
  const std::vector<tda::QueryResult> results = attributor->Attribute(queries, options).value();
  QueryScores out;
  out.scores.resize(attributor->index().rows(), static_cast<Eigen::Index>(queries.size()));
  for (size_t q = 0; q < results.size(); ++q) {
    for (int64_t r = 0; r < out.scores.rows(); ++r) out.scores(r, q) = results[q].scores[r];
    std::vector<int64_t> top;
    for (const tda::Hit& hit : results[q].proponents) top.push_back(hit.row);
    out.top.push_back(std::move(top));
  }
  return out;
}

// Mean over queries of the Spearman correlation of all rows' scores, and of the share of the
// reference's top 10 that `other` also ranks in its top 10.
void CompareScores(const char* name, const QueryScores& other, const QueryScores& reference) {
  double spearman = 0, overlap = 0;
  const Eigen::Index queries = reference.scores.cols();
  for (Eigen::Index q = 0; q < queries; ++q) {
    spearman += tda::Spearman(other.scores.col(q), reference.scores.col(q));
    int64_t shared = 0;
    for (int64_t row : reference.top[q]) {
      shared += std::count(other.top[q].begin(), other.top[q].end(), row);
    }
    overlap += static_cast<double>(shared) / static_cast<double>(reference.top[q].size());
  }
  std::printf(
      "%-10s scores vs every-document factors, %lld queries: Spearman %.4f, top-10 "
      "overlap %.3f\n",
      name, static_cast<long long>(queries), spearman / queries, overlap / queries);
}

}  // namespace

int main(int argc, char** argv) {
  int64_t documents = 2000, threads = 0, profile_batches = 8, queries = 20;
  bool three_pass = true;
  std::vector<int64_t> factor_examples;
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
    else if (flag == "--three-pass")
      three_pass = std::atoll(argv[i + 1]) != 0;
    else if (flag == "--queries")
      queries = std::atoll(argv[i + 1]);
    else if (flag == "--factor-examples") {
      for (absl::string_view part : absl::StrSplit(argv[i + 1], ',')) {
        int64_t f = 0;
        if (!absl::SimpleAtoi(part, &f) || f <= 0) {
          std::fprintf(stderr, "--factor-examples takes positive counts, got %s\n", argv[i + 1]);
          return 2;
        }
        factor_examples.push_back(f);
      }
    } else {
      std::fprintf(stderr,
                   "usage: build_pass_bench [--documents N] [--threads T] [--dir DIR] "
                   "[--profile-batches K] [--three-pass 0|1] [--factor-examples F[,F...]] "
                   "[--queries Q]\n");
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
  options.out_dir = dir + "/fused";
  options.fused_pass = true;
  const BuildTimes fused = TimedBuild(train, options);
  PrintBuild("fused", fused, epoch);
  if (three_pass) {
    options.out_dir = dir + "/three-pass";
    options.fused_pass = false;
    const BuildTimes three = TimedBuild(train, options);
    PrintBuild("three-pass", three, epoch);
    std::printf("fused / three-pass: %.3f\n", fused.total / three.total);
  }
  if (!factor_examples.empty()) {
    const std::vector<tda::Query> held_out = HeldOutQueries(queries, config.context_length);
    const QueryScores reference = ScoreQueries(dir + "/fused", held_out);
    for (const int64_t f : factor_examples) {
      tda::IndexBuildOptions part = options;
      part.fused_pass = true;
      part.fit.max_examples = f;
      part.out_dir = dir + "/factors-" + std::to_string(f);
      const std::string name = "F " + std::to_string(f);
      PrintBuild(name.c_str(), TimedBuild(train, part), epoch);
      CompareScores(name.c_str(), ScoreQueries(part.out_dir, held_out), reference);
    }
  }
  options.out_dir = dir + "/fused";
  if (profile_batches > 0) {
    Profile(*model, train, options.out_dir, tda::DefaultBatchSize(config), profile_batches);
  }
  return 0;
}
