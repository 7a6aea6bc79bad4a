// How an index's costs grow with its rows: the constants a 10^9-row deployment is planned from.
//   scaling_bench [--rows 250000,1000000,4000000,16000000] [--dim 128] [--dtype bf16]
//                 [--reps 5] [--work DIR]
// For each N: writes N generated rows with IndexWriter (as a build's gradient pass does: shards
// written temp + fsync + rename with their XXH3, the sample table), then runs a query's scan
// (GradientIndex::Scan, 1 query, top-10 heaps and per-source sums in the same pass) from the
// page cache. Prints per N: write rate (rows/s, MB/s), the best and median scan time, ns per
// row, GB/s and its ratio to the STREAM triad bandwidth measured in the same run, and bytes per
// row. The indexes are removed after each N (16M x 128 bf16 is 4.1 GB).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "index/gradient_index.h"
#include "index/row_dtype.h"
#include "memory_bandwidth.h"
#include "model/model.h"
#include "synthetic_index.h"

namespace {

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

int Usage(const char* message) {
  std::fprintf(stderr,
               "scaling_bench: %s\nusage: scaling_bench [--rows N,N,...] [--dim D] "
               "[--dtype f32|bf16|f16] [--reps R] [--work DIR]\n",
               message);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int64_t> sizes = {250000, 1000000, 4000000, 16000000};
  int64_t dim = 128;
  int reps = 5;
  tda::RowDType dtype = tda::RowDType::kBF16;
  std::string work = std::filesystem::temp_directory_path().string();
  for (int i = 1; i < argc; i += 2) {
    if (i + 1 >= argc) return Usage("every flag takes a value");
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--rows") {
      sizes.clear();
      for (absl::string_view part : absl::StrSplit(value, ',')) {
        int64_t n = 0;
        if (!absl::SimpleAtoi(part, &n) || n <= 0) return Usage("--rows takes positive counts");
        sizes.push_back(n);
      }
    } else if (flag == "--dim") {
      if (!absl::SimpleAtoi(value, &dim) || dim <= 0) return Usage("--dim must be > 0");
    } else if (flag == "--reps") {
      if (!absl::SimpleAtoi(value, &reps) || reps <= 0) return Usage("--reps must be > 0");
    } else if (flag == "--dtype") {
      auto parsed = tda::ParseRowDType(value);
      if (!parsed.ok()) return Usage("--dtype must be f32, bf16 or f16");
      dtype = *parsed;
    } else if (flag == "--work") {
      work = value;
    } else {
      return Usage(("unknown flag " + flag).c_str());
    }
  }
  tda::InitCompute();  // as tda-server: the scan's threads, OpenBLAS single-threaded inside them
  const double row_bytes = static_cast<double>(dim * tda::RowDTypeBytes(dtype));
  const double triad = tda::bench::TriadGBps(static_cast<size_t>(1) << 26, reps);
  std::printf("threads %d, dim %lld %s (%.0f bytes a row), STREAM triad %.1f GB/s\n",
              omp_get_max_threads(), static_cast<long long>(dim), tda::RowDTypeName(dtype),
              row_bytes, triad);
  std::printf(
      "| rows | GB | write rows/s | write MB/s | scan best ms | scan median ms | "
      "ns / row | scan GB/s | / triad |\n|---|---|---|---|---|---|---|---|---|\n");

  // One block of Gaussian rows, repeated: the costs do not depend on the values.
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  std::vector<float> block(static_cast<size_t>(8192 * dim));
  for (float& v : block) v = normal(rng);
  const Eigen::MatrixXf query = Eigen::MatrixXf::Random(dim, 1);
  tda::ScanOptions options;
  options.top_k = 10;
  options.source_sums = true;
  for (int64_t rows : sizes) {
    const std::string dir = work + "/tda-scaling-bench-" + std::to_string(rows);
    const auto write_start = std::chrono::steady_clock::now();
    absl::Status written = tda::bench::WriteSyntheticIndex(
        dir, rows, dim, dtype, [&](int64_t, int64_t count, float* out) {
          std::copy(block.begin(), block.begin() + count * dim, out);
        });
    const double write_seconds = Seconds(write_start);
    if (!written.ok()) {
      std::fprintf(stderr, "%s\n", written.ToString().c_str());
      return 1;
    }
    auto index = tda::GradientIndex::Open(dir, tda::GradientIndex::Verify::kSizes);
    if (!index.ok()) {
      std::fprintf(stderr, "%s\n", index.status().ToString().c_str());
      return 1;
    }
    (*index)->Scan(query, options);  // page in
    std::vector<double> times;
    for (int r = 0; r < reps; ++r) {
      const auto start = std::chrono::steady_clock::now();
      tda::ScanResult result = (*index)->Scan(query, options);
      times.push_back(Seconds(start));
      if (result.proponents.size() != 1) std::abort();
    }
    std::sort(times.begin(), times.end());
    const double bytes = row_bytes * static_cast<double>(rows);
    std::printf("| %lld | %.2f | %.3g | %.0f | %.1f | %.1f | %.2f | %.2f | %.2f |\n",
                static_cast<long long>(rows), bytes / 1e9, rows / write_seconds,
                bytes / write_seconds / 1e6, times.front() * 1e3, times[times.size() / 2] * 1e3,
                times.front() * 1e9 / static_cast<double>(rows), bytes / times.front() / 1e9,
                bytes / times.front() / 1e9 / triad);
    std::fflush(stdout);
    index->reset();
    std::filesystem::remove_all(dir);
  }
  return 0;
}
