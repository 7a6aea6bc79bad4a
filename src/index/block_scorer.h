// The inner kernel of an index scan: scores a contiguous block of stored gradient rows against
// a batch of query vectors, out(r, q) = row_r . queries.col(q), in float32.
//
// How, by row dtype and batch size Q:
//   f32 rows, Q = 1: a GEMV straight from the mapped rows (Eigen; bandwidth-bound).
//   bf16 / f16 rows with Q <= kFusedMaxQueries, and f32 rows with 2 <= Q <= FusedMaxQueries
//     (an AVX2 + FMA build; F16C for f16): a fused kernel reads each stored row once, loads 8
//     elements at a time into registers (bf16 -> f32 is a 16-bit shift) and accumulates all Q
//     dot products with FMA. Nothing is written back to memory, so a scan of few queries is
//     bound by memory bandwidth, not by conversion or by SGEMM's packing of thin tiles. For f32
//     rows and 5 to 8 queries, the queries sit in the 8 lanes of a register instead and each
//     row element is broadcast against them (no horizontal sums, one pass over the rows); an
//     AVX-512 build does the same for f32 rows and 9 to 32 queries in one or two 16-lane
//     registers (FusedMaxQueries).
//   otherwise: OpenBLAS SGEMM over tiles of a few hundred rows (bf16 / f16 tiles converted to
//     f32 first in a per-thread buffer that stays in cache); compute-bound. Each call runs on
//     its calling scan thread when the process has called InitCompute (model/model.h).
// Every path computes exact f32 products of the stored (rounded) elements; only the order of
// the additions differs, so scores agree to float rounding. Thread-safe (per-thread buffers).
#pragma once

#include <cstdint>

#include <Eigen/Core>

#include "index/row_dtype.h"

namespace tda {

inline constexpr int kFusedMaxQueries = 8;

// The most queries the fused kernels take for this dtype in this build (kFusedMaxQueries, or
// 32 for f32 rows on AVX-512); more go through SGEMM tiles.
int FusedMaxQueries(RowDType dtype);

// True when ScoreRows uses the fused kernel for this dtype and number of queries.
bool UsesFusedKernel(RowDType dtype, int64_t queries);

// `rows` holds `count` rows of `dim` elements of `dtype` (aligned to the element size);
// `queries` is dim x Q; `out` is count x Q (any outer stride, e.g. a middleRows block).
void ScoreRows(const char* rows, int64_t count, int64_t dim, RowDType dtype,
               const Eigen::MatrixXf& queries, Eigen::Ref<Eigen::MatrixXf> out);

}  // namespace tda
