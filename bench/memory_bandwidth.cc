#include "memory_bandwidth.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <vector>

namespace tda::bench {

double TriadGBps(size_t n, int reps) {
  std::vector<double> a(n), b(n, 1.0), c(n, 2.0);
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; ++i) a[i] = 0;  // first touch by the threads that use it
  double best = 0;
  for (int r = 0; r < reps; ++r) {
    const auto start = std::chrono::steady_clock::now();
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; ++i) a[i] = b[i] + 3.0 * c[i];
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, 3.0 * n * sizeof(double) / seconds / 1e9);
  }
  if (a[n / 2] != 7.0) std::abort();
  return best;
}

}  // namespace tda::bench
