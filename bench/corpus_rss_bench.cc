// Peak memory of a JSONL index build against the corpus size: the build streams the corpus from its
// token cache, so peak RSS must not grow with the number of documents.
//   corpus_rss_bench [--documents N] [--factor F] [--context C] [--threads T] [--dir DIR]
//                    [--factor-examples K] [--in-memory-baseline 1]
// Generates JSONL corpora of real text (the fortunes, repeated with distinct ids and a varied last
// line) of N and F x N documents, then, each in its own child process (so peak RSS is the build's
// own), tokenizes each into its token cache and indexes it with a small GPT (random init: memory
// does not depend on the weights). Prints per size: peak RSS (ru_maxrss of the child) of the cache
// build and of the index build, the index bytes and rows/s; then the ratio of the index builds'
// peaks (the claim: <= 1.2). With --in-memory-baseline 1 the larger corpus is also indexed from an
// in-memory Dataset (its rows loaded first, as before streaming), for comparison.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "data/fortunes.h"
#include "data/jsonl_corpus.h"
#include "data/token_cache.h"
#include "model/model.h"
#include "model/recipe_data.h"
#include "ops/build_model_index.h"

namespace {

struct Child {
  double seconds = 0;
  long peak_rss_kib = 0;
};

// Runs this binary with `args` in a child process; its wall time and peak RSS.
Child RunChild(const std::vector<std::string>& args) {
  const auto start = std::chrono::steady_clock::now();
  const pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> argv;
    std::string self = "/proc/self/exe";
    argv.push_back(self.data());
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv("/proc/self/exe", argv.data());
    std::perror("execv");
    _exit(127);
  }
  int status = 0;
  struct rusage usage {};
  if (wait4(pid, &status, 0, &usage) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "child %s failed\n", args[0].c_str());
    std::exit(1);
  }
  Child child;
  child.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  child.peak_rss_kib = usage.ru_maxrss;
  return child;
}

// The fortunes repeated to `documents` documents: copy c of document d has id "<id>/<c>" and a last
// line naming its copy, so that no two documents are the same.
void WriteCorpus(const std::vector<tda::TextDocument>& fortunes, int64_t documents,
                 const std::string& path) {
  std::vector<tda::TextDocument> docs;
  docs.reserve(static_cast<size_t>(documents));
  for (int64_t i = 0; i < documents; ++i) {
    const tda::TextDocument& base = fortunes[static_cast<size_t>(i) % fortunes.size()];
    const int64_t copy = i / static_cast<int64_t>(fortunes.size());
    tda::TextDocument doc = base;
    doc.id = absl::StrCat(base.id, "/", copy);
    if (copy > 0) absl::StrAppend(&doc.text, "\t-- ", copy);
    docs.push_back(std::move(doc));
  }
  if (absl::Status s = tda::WriteJsonl(docs, path); !s.ok()) {
    std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
    std::exit(1);
  }
}

uint64_t DirectoryBytes(const std::string& dir) {
  uint64_t bytes = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) bytes += entry.file_size();
  }
  return bytes;
}

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
  return 1;
}

// Child stages.
int SaveModels(int64_t context, const std::vector<std::string>& corpora, const std::string& dir) {
  const tda::ModelConfig config = tda::GptConfig(context, /*d_model=*/32, /*layers=*/1,
                                                 /*heads=*/2, /*mlp_width=*/64, /*tied=*/true);
  absl::StatusOr<std::unique_ptr<tda::Model>> model = tda::CreateModel(config, 0);
  if (!model.ok()) return Fail(model.status());
  for (size_t i = 0; i < corpora.size(); ++i) {
    tda::TrainRecipe recipe;
    recipe.dataset = "jsonl";
    recipe.data_dir = corpora[i];
    absl::StatusOr<std::string> hash = tda::JsonlCorpusHash({corpora[i]});
    if (!hash.ok()) return Fail(hash.status());
    recipe.corpus_hash = *hash;
    if (absl::Status s = (*model)->Save(absl::StrCat(dir, "/model-", i), recipe); !s.ok()) {
      return Fail(s);
    }
  }
  return 0;
}

int BuildCache(const std::string& corpus, const std::string& cache_dir) {
  tda::JsonlOptions options;
  options.paths = {corpus};
  tda::TokenCacheOptions cache_options;
  cache_options.root = cache_dir;
  absl::StatusOr<std::unique_ptr<tda::TokenCache>> cache =
      tda::TokenCache::Open(options, cache_options);
  if (!cache.ok()) return Fail(cache.status());
  // Reopen: what every later reader pays (hash the corpus, verify every file).
  const auto start = std::chrono::steady_clock::now();
  cache = tda::TokenCache::Open(options, cache_options);
  if (!cache.ok()) return Fail(cache.status());
  std::printf(
      "  cache: %lld documents, %lld tokens; reopening (corpus hash + verification) %.3f s\n",
      static_cast<long long>((*cache)->documents()), static_cast<long long>((*cache)->tokens()),
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return 0;
}

// Streams the rows from the token cache (BuildModelIndex), or, `in_memory`, loads them into a
// Dataset first (LoadRecipeData, as training does) and builds from that: the baseline.
int BuildIndex(const std::string& model_dir, const std::string& out, const std::string& cache_dir,
               int threads, int64_t factor_examples, bool in_memory) {
  tda::InitCompute(threads);
  tda::ModelIndexRequest request;
  request.index.model_dir = model_dir;
  request.index.out_dir = out;
  request.index.projection_dim_per_side = 8;
  request.index.dtype = tda::RowDType::kBF16;
  request.index.fit.max_examples = factor_examples;
  request.cache_dir = cache_dir;
  if (in_memory) {
    tda::TrainRecipe recipe;
    absl::StatusOr<std::unique_ptr<tda::Model>> model = tda::LoadModel(model_dir, &recipe);
    if (!model.ok()) return Fail(model.status());
    absl::StatusOr<tda::Dataset> train = tda::LoadRecipeData(
        (*model)->config(), recipe, tda::Split::kTrain, "", nullptr, false, cache_dir);
    if (!train.ok()) return Fail(train.status());
    absl::Status built = tda::BuildIndex(*train, recipe.data_dir, request.index);
    return built.ok() ? 0 : Fail(built);
  }
  absl::StatusOr<tda::ModelIndexPlan> plan = tda::BuildModelIndex(request);
  if (!plan.ok()) return Fail(plan.status());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == "--stage-models") {
    return SaveModels(std::atoll(args[1].c_str()), {args.begin() + 3, args.end()}, args[2]);
  }
  if (!args.empty() && args[0] == "--stage-cache") return BuildCache(args[1], args[2]);
  if (!args.empty() && args[0] == "--stage-index") {
    return BuildIndex(args[1], args[2], args[3], std::atoi(args[4].c_str()),
                      std::atoll(args[5].c_str()), args[6] == "1");
  }
  int64_t documents = 10000, factor = 10, context = 64, factor_examples = 10000;
  int threads = 0;
  std::string dir;
  bool baseline = false;
  for (size_t i = 0; i + 1 < args.size(); i += 2) {
    if (args[i] == "--documents") documents = std::atoll(args[i + 1].c_str());
    if (args[i] == "--factor") factor = std::atoll(args[i + 1].c_str());
    if (args[i] == "--context") context = std::atoll(args[i + 1].c_str());
    if (args[i] == "--threads") threads = std::atoi(args[i + 1].c_str());
    if (args[i] == "--factor-examples") factor_examples = std::atoll(args[i + 1].c_str());
    if (args[i] == "--in-memory-baseline") baseline = args[i + 1] == "1";
    if (args[i] == "--dir") dir = args[i + 1];
  }
  const bool temporary = dir.empty();
  if (temporary) {
    char pattern[] = "/tmp/corpus_rss_bench-XXXXXX";
    if (mkdtemp(pattern) == nullptr) return 1;
    dir = pattern;
  }
  absl::StatusOr<std::vector<tda::TextDocument>> fortunes =
      tda::ReadFortunes(tda::kFortunesDefaultDir);
  if (!fortunes.ok()) return Fail(fortunes.status());
  const int64_t sizes[] = {documents, documents * factor};
  std::vector<std::string> corpora;
  for (int64_t n : sizes) {
    corpora.push_back(absl::StrCat(dir, "/corpus-", n, ".jsonl"));
    WriteCorpus(*fortunes, n, corpora.back());
  }
  std::vector<std::string> model_args = {"--stage-models", std::to_string(context), dir};
  model_args.insert(model_args.end(), corpora.begin(), corpora.end());
  RunChild(model_args);

  std::printf(
      "JSONL index build, gpt d_model 32, 1 layer, context %lld, projection 8 per side, bf16 "
      "rows\n",
      static_cast<long long>(context));
  long peaks[2] = {0, 0};
  for (size_t i = 0; i < 2; ++i) {
    const std::string cache = absl::StrCat(dir, "/cache");
    const std::string index = absl::StrCat(dir, "/index-", i);
    std::printf("%lld documents (%.1f MB of JSONL):\n", static_cast<long long>(sizes[i]),
                static_cast<double>(std::filesystem::file_size(corpora[i])) / 1e6);
    std::fflush(stdout);
    const Child tokenize = RunChild({"--stage-cache", corpora[i], cache});
    const Child build = RunChild({"--stage-index", absl::StrCat(dir, "/model-", i), index, cache,
                                  std::to_string(threads), std::to_string(factor_examples), "0"});
    peaks[i] = build.peak_rss_kib;
    // Rows: one per training document (the held-out 5% excepted), a line each in the sample table.
    std::ifstream table(index + "/samples.tsv");
    int64_t rows = 0;
    for (std::string line; std::getline(table, line);) ++rows;
    std::printf("  token cache build: peak RSS %7.1f MiB, %6.1f s\n",
                static_cast<double>(tokenize.peak_rss_kib) / 1024, tokenize.seconds);
    std::printf(
        "  index build:       peak RSS %7.1f MiB, %6.1f s, %lld rows, %.0f rows/s, index %.1f "
        "MiB\n",
        static_cast<double>(build.peak_rss_kib) / 1024, build.seconds, static_cast<long long>(rows),
        static_cast<double>(rows) / build.seconds,
        static_cast<double>(DirectoryBytes(index)) / (1 << 20));
    std::fflush(stdout);
  }
  std::printf("peak RSS of the index build, %lldx the documents: %.3fx\n",
              static_cast<long long>(factor),
              static_cast<double>(peaks[1]) / static_cast<double>(peaks[0]));
  if (baseline) {
    const Child memory = RunChild({"--stage-index", absl::StrCat(dir, "/model-1"),
                                   absl::StrCat(dir, "/index-memory"), absl::StrCat(dir, "/cache"),
                                   std::to_string(threads), std::to_string(factor_examples), "1"});
    std::printf(
        "baseline, %lld documents loaded into a Dataset first: peak RSS %.1f MiB, %.1f s "
        "(streaming: %.3fx of it)\n",
        static_cast<long long>(sizes[1]), static_cast<double>(memory.peak_rss_kib) / 1024,
        memory.seconds, static_cast<double>(peaks[1]) / static_cast<double>(memory.peak_rss_kib));
  }
  if (temporary) std::filesystem::remove_all(dir);
  return 0;
}
