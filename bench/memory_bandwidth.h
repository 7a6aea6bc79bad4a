// The machine's memory bandwidth, measured in the benchmark's own run: the baseline that scan
// rates are divided by.
#pragma once

#include <cstddef>

namespace tda::bench {

// STREAM triad a[i] = b[i] + s * c[i] on the OpenMP threads over arrays of `n` doubles (choose
// n far larger than cache): the best of `reps` runs, in GB/s (bytes moved = 3 x array bytes).
double TriadGBps(size_t n, int reps);

}  // namespace tda::bench
