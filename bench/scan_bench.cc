// Index scan throughput against the machine's memory bandwidth, measured in the same process.
//   scan_bench [--gb 1.0] [--dim 1344] [--reps 5] [--dtype f32|bf16|f16]
// Baseline: STREAM triad a[i] = b[i] + s * c[i] over arrays far larger than cache (bytes moved
// = 3 x array bytes). Scan: GradientIndex::Scan as a query runs it (top-10 heaps and per-source
// sums in the same pass) over an index of --gb GB of rows stored as --dtype, written to a temp
// directory. Prints GB/s for 1 and 8 queries (bytes of the index read per second: 2 per element
// for bf16 / f16, 4 for f32; bf16/f16 take the fused kernel there), its ratio to triad, and the
// time of one 64-query batch divided by 64 single queries, and that batch's floor: its
// multiply-adds at the SGEMM rate measured on cached tiles in the same run.
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "index/block_scorer.h"
#include "index/gradient_index.h"
#include "index/row_dtype.h"
#include "memory_bandwidth.h"
#include "model/model.h"
#include "synthetic_index.h"

namespace {

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

// SGEMM throughput of the scan's own GEMM path (ScoreRows on f32 rows, OpenBLAS) on tiles
// that stay in cache, every thread scoring its own tile against the same `queries`: the most
// any 64-query batch can get from these cores.
double GemmGflops(int64_t dim, const Eigen::MatrixXf& queries, int reps) {
  constexpr int64_t kRows = 256;
  const int threads = omp_get_max_threads();
  std::vector<std::vector<float>> tiles(static_cast<size_t>(threads));
  for (auto& tile : tiles) tile.assign(static_cast<size_t>(kRows * dim), 0.5f);
  constexpr int kCalls = 200;
  double best = 0;
  for (int r = 0; r < reps; ++r) {
    auto t = std::chrono::steady_clock::now();
#pragma omp parallel
    {
      Eigen::MatrixXf out(kRows, queries.cols());
      const char* rows = reinterpret_cast<const char*>(tiles[omp_get_thread_num()].data());
      for (int c = 0; c < kCalls; ++c) {
        tda::ScoreRows(rows, kRows, dim, tda::RowDType::kF32, queries, out);
      }
    }
    const double flops = 2.0 * kRows * dim * queries.cols() * kCalls * threads;
    best = std::max(best, flops / Seconds(t) / 1e9);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  double gb = 1.0;
  int64_t dim = 1344;  // the default Fashion-MNIST index (784-128-10, 32 per side)
  int reps = 5;
  tda::RowDType dtype = tda::RowDType::kF32;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--gb")) gb = std::atof(argv[i + 1]);
    if (!std::strcmp(argv[i], "--dim")) dim = std::atoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--reps")) reps = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--dtype")) {
      auto parsed = tda::ParseRowDType(argv[i + 1]);
      if (!parsed.ok()) {
        std::fprintf(stderr, "%s\n", parsed.status().ToString().c_str());
        return 2;
      }
      dtype = *parsed;
    }
  }
  tda::InitCompute();  // as tda-server: OpenBLAS on the scan threads, no threads of its own
  const double element_bytes = static_cast<double>(tda::RowDTypeBytes(dtype));
  const int64_t rows = static_cast<int64_t>(gb * 1e9 / (dim * element_bytes));
  std::printf("threads %d, index %lld rows x %lld dims %s = %.2f GB\n", omp_get_max_threads(),
              static_cast<long long>(rows), static_cast<long long>(dim), tda::RowDTypeName(dtype),
              rows * dim * element_bytes / 1e9);

  const double triad = tda::bench::TriadGBps(static_cast<size_t>(1) << 26, reps);  // 3 x 512 MiB
  std::printf("STREAM triad:            %7.1f GB/s\n", triad);

  const std::string dir = (std::filesystem::temp_directory_path() / "tda-scan-bench").string();
  {
    // One block of Gaussian rows, repeated: the scan's speed does not depend on the values.
    std::mt19937 rng(1);
    std::normal_distribution<float> normal;
    std::vector<float> block(static_cast<size_t>(8192 * dim));
    for (float& v : block) v = normal(rng);
    absl::Status written = tda::bench::WriteSyntheticIndex(
        dir, rows, dim, dtype, [&](int64_t, int64_t count, float* out) {
          std::copy(block.begin(), block.begin() + count * dim, out);
        });
    if (!written.ok()) {
      std::fprintf(stderr, "%s\n", written.ToString().c_str());
      return 1;
    }
  }
  auto index = tda::GradientIndex::Open(dir, tda::GradientIndex::Verify::kSizes).value();
  const double bytes = static_cast<double>(rows) * dim * element_bytes;
  // What a query runs: one pass with top-10 heaps and per-source sums, no full score vector.
  tda::ScanOptions options;
  options.top_k = 10;
  options.source_sums = true;
  auto best_seconds = [&](const Eigen::MatrixXf& queries) {
    double best = 1e30;
    for (int r = 0; r < reps; ++r) {
      auto t = std::chrono::steady_clock::now();
      tda::ScanResult result = index->Scan(queries, options);
      best = std::min(best, Seconds(t));
      if (result.proponents.size() != static_cast<size_t>(queries.cols())) std::abort();
    }
    return best;
  };
  Eigen::MatrixXf one = Eigen::MatrixXf::Random(dim, 1), eight = Eigen::MatrixXf::Random(dim, 8),
                  batch = Eigen::MatrixXf::Random(dim, 64);
  index->Scan(one, options);  // page in
  const double single = best_seconds(one), small_batch = best_seconds(eight),
               batched = best_seconds(batch);
  const char* kernel = tda::UsesFusedKernel(dtype, 1) ? "fused" : "GEMM";
  std::printf("scan %-4s, 1 query (%s):   %7.1f GB/s  (%.1f ms)  ratio to triad %.2f\n",
              tda::RowDTypeName(dtype), kernel, bytes / single / 1e9, single * 1e3,
              bytes / single / 1e9 / triad);
  std::printf("scan %-4s, 8 queries (%s): %7.1f GB/s  (%.1f ms)  ratio to triad %.2f\n",
              tda::RowDTypeName(dtype), kernel, bytes / small_batch / 1e9, small_batch * 1e3,
              bytes / small_batch / 1e9 / triad);
  std::printf("scan, 64 queries batched: %6.1f ms = %.3f x the time of 64 single queries\n",
              batched * 1e3, batched / (64 * single));
  // The floor of a 64-query batch: its multiply-adds at the SGEMM rate these cores reach.
  const double gflops = GemmGflops(dim, batch, reps);
  const double floor = 2.0 * static_cast<double>(rows) * dim * 64 / (gflops * 1e9);
  std::printf("SGEMM in cache:          %7.1f GFLOP/s; a 64-query batch needs >= %.1f ms at that "
              "rate = %.3f x 64 single queries (batch reached %.2f of it)\n",
              gflops, floor * 1e3, floor / (64 * single), floor / batched);
  std::filesystem::remove_all(dir);
  return 0;
}
