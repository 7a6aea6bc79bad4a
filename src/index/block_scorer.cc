#include "index/block_scorer.h"

#include <algorithm>
#include <array>
#include <type_traits>
#include <vector>

#include <cblas.h>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define TDA_FUSED_SCAN 1
#endif

namespace tda {
namespace {

// GEMMs run on tiles of up to 256 rows and at most 1 MiB of f32 (bf16 / f16 converted per
// tile), so a tile stays in L2 while OpenBLAS multiplies it by all the queries (measured on 2
// Zen 3 cores: 105 GFLOP/s this way vs 67 for Eigen on the same tiles, 82 for one whole-block
// call).
constexpr int64_t kTileRows = 256;
constexpr int64_t kTileFloats = 1 << 18;

using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// out(r, q) = tile_r . queries.col(q) for `n` f32 rows of `dim` elements.
void GemmTile(const float* tile, int64_t n, int64_t dim, const Eigen::MatrixXf& queries,
              float* out, int64_t out_stride) {
  cblas_sgemm(CblasColMajor, CblasTrans, CblasNoTrans, static_cast<int>(n),
              static_cast<int>(queries.cols()), static_cast<int>(dim), 1.0f, tile,
              static_cast<int>(dim), queries.data(), static_cast<int>(queries.outerStride()), 0.0f,
              out, static_cast<int>(out_stride));
}

void TiledGemm(const char* rows, int64_t count, int64_t dim, RowDType dtype,
               const Eigen::MatrixXf& queries, Eigen::Ref<Eigen::MatrixXf> out) {
  const size_t row_bytes = static_cast<size_t>(dim) * RowDTypeBytes(dtype);
  const int64_t tile_rows = std::max<int64_t>(1, std::min(kTileRows, kTileFloats / dim));
  thread_local std::vector<float> converted;
  if (dtype != RowDType::kF32) converted.resize(static_cast<size_t>(tile_rows * dim));
  for (int64_t t = 0; t < count; t += tile_rows) {
    const int64_t n = std::min(tile_rows, count - t);
    const char* at = rows + static_cast<size_t>(t) * row_bytes;
    const float* tile = reinterpret_cast<const float*>(at);
    if (dtype != RowDType::kF32) {
      ConvertToF32(at, static_cast<size_t>(n * dim), dtype, converted.data());
      tile = converted.data();
    }
    GemmTile(tile, n, dim, queries, &out(t, 0), out.outerStride());
  }
}

#if TDA_FUSED_SCAN

// The stored element of a row dtype: float for f32, the 16 bits of bf16 / f16.
template <RowDType D>
using Stored = std::conditional_t<D == RowDType::kF32, float, uint16_t>;

template <RowDType D>
inline __m256 Load8(const Stored<D>* p) {
  if constexpr (D == RowDType::kF32) {
    return _mm256_loadu_ps(p);
  } else {
    const __m128i bits = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    if constexpr (D == RowDType::kBF16) {
      return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(bits), 16));
    } else {
      return _mm256_cvtph_ps(bits);
    }
  }
}

inline float HorizontalSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Q <= 4 queries, two rows at a time: 2Q independent FMA chains, and each query vector loaded
// once per pair of rows. The loops over queries must be unrolled so that the accumulators live
// in registers: GCC at -O2 kept them on the stack (a load-FMA-store chain per element), which
// held 8 fused queries to a quarter of the FMA rate. The rows kPrefetchRows ahead are
// prefetched: without it, the multiply-adds of a group of queries wait on memory instead of
// overlapping with it (8 f32 queries over 60k x 1344 rows on one Zen core: 88 ms without,
// 65 ms with; one query's pass over the same rows takes 45 ms).
#define TDA_UNROLL _Pragma("GCC unroll 8")
constexpr int64_t kPrefetchRows = 4;
template <RowDType D, int Q>
void FusedRows(const Stored<D>* rows, int64_t count, int64_t dim, const float* queries,
               int64_t query_stride, float* out, int64_t out_stride) {
  static_assert(Q >= 1 && Q <= 4, "8 accumulators at most");
  constexpr int64_t kElementsPerLine = 64 / sizeof(Stored<D>);
  const float* q_ptr[Q];
  TDA_UNROLL
  for (int q = 0; q < Q; ++q) q_ptr[q] = queries + q * query_stride;
  auto tail = [&](const Stored<D>* row, int64_t from, int q) {
    float sum = 0;
    for (int64_t j = from; j < dim; ++j) {
      float x = 0;
      ConvertToF32(row + j, 1, D, &x);
      sum += x * q_ptr[q][j];
    }
    return sum;
  };
  int64_t r = 0;
  for (; r + 2 <= count; r += 2) {
    const Stored<D>* row0 = rows + r * dim;
    const Stored<D>* row1 = row0 + dim;
    __m256 acc0[Q], acc1[Q];
    TDA_UNROLL
    for (int q = 0; q < Q; ++q) acc0[q] = acc1[q] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= dim; i += 8) {
      if (i % kElementsPerLine == 0) {  // the rows 4 ahead: a prefetch per cache line
        _mm_prefetch(reinterpret_cast<const char*>(row0 + kPrefetchRows * dim + i), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(row1 + kPrefetchRows * dim + i), _MM_HINT_T0);
      }
      const __m256 x0 = Load8<D>(row0 + i), x1 = Load8<D>(row1 + i);
      TDA_UNROLL
      for (int q = 0; q < Q; ++q) {
        const __m256 v = _mm256_loadu_ps(q_ptr[q] + i);
        acc0[q] = _mm256_fmadd_ps(x0, v, acc0[q]);
        acc1[q] = _mm256_fmadd_ps(x1, v, acc1[q]);
      }
    }
    TDA_UNROLL
    for (int q = 0; q < Q; ++q) {
      out[r + q * out_stride] = HorizontalSum(acc0[q]) + tail(row0, i, q);
      out[r + 1 + q * out_stride] = HorizontalSum(acc1[q]) + tail(row1, i, q);
    }
  }
  for (; r < count; ++r) {  // an odd last row
    const Stored<D>* row = rows + r * dim;
    __m256 acc[Q];
    TDA_UNROLL
    for (int q = 0; q < Q; ++q) acc[q] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= dim; i += 8) {
      const __m256 x = Load8<D>(row + i);
      TDA_UNROLL
      for (int q = 0; q < Q; ++q) acc[q] = _mm256_fmadd_ps(x, _mm256_loadu_ps(q_ptr[q] + i), acc[q]);
    }
    TDA_UNROLL
    for (int q = 0; q < Q; ++q) out[r + q * out_stride] = HorizontalSum(acc[q]) + tail(row, i, q);
  }
}

constexpr int kFusedGroup = 4;  // queries per pass of the fused kernel

// Scores `count` rows against every column of `queries`: groups of up to 4 queries over chunks
// of 64 rows, so that a second group re-reads the chunk from L2, not from memory.
template <RowDType D>
void FusedScore(const char* rows, int64_t count, int64_t dim, const Eigen::MatrixXf& queries,
                Eigen::Ref<Eigen::MatrixXf> out) {
  using Fn = void (*)(const Stored<D>*, int64_t, int64_t, const float*, int64_t, float*, int64_t);
  static constexpr std::array<Fn, kFusedGroup> kByCount = {&FusedRows<D, 1>, &FusedRows<D, 2>,
                                                            &FusedRows<D, 3>, &FusedRows<D, 4>};
  constexpr int64_t kChunkRows = 64;
  const auto* elements = reinterpret_cast<const Stored<D>*>(rows);
  for (int64_t c = 0; c < count; c += kChunkRows) {
    const int64_t n_rows = std::min(kChunkRows, count - c);
    for (int64_t q = 0; q < queries.cols(); q += kFusedGroup) {
      const int64_t n = std::min<int64_t>(kFusedGroup, queries.cols() - q);
      kByCount[static_cast<size_t>(n - 1)](elements + c * dim, n_rows, dim, queries.col(q).data(),
                                           queries.outerStride(), &out(c, q), out.outerStride());
    }
  }
}

// f32 rows and more than kFusedGroup queries (where the kernel above needs a second pass of
// query groups over each chunk): the queries are laid out in lanes instead. qt holds, per
// element j, the queries' element j (zero-padded to 8 lanes), and kBroadcastRows rows are
// scored at a time: one broadcast of each row's element j and one FMA into that row's 8-lane
// accumulator (its 8 scores). Per element, one query load serves all the rows; there are no
// horizontal sums, and kBroadcastRows independent FMA chains. Measured on the loaded 2-core box
// (one thread, 60k x 1344 f32 rows, 8 queries): 131-178 ms against 179-287 ms for two groups
// of the kernel above, interleaved runs. The same layout for bf16 / f16 (widening a piece of
// each row into L1 first) was not faster there, so they keep the kernel above.
//
// An AVX-512 build does the same for f32 rows and 9 to 32 queries, in one or two 16-lane zmm
// registers per row (V = 1 or 2; 8 x V accumulators of the 32 registers). SGEMM on tiles this
// thin spent about as long packing each tile as multiplying it (sgemm_incopy 24% against the
// kernel's 32% of a 32-query scan); here each row element is read once, into a broadcast. A
// 32-query scan of 60k x 1344 f32 rows on one Intel Xeon core: 35-43 ms against 70-73 ms.
constexpr int kBroadcastMinQueries = kFusedGroup + 1;
constexpr int kBroadcastRows = 8;
constexpr int64_t kFloatsPerLine = 16;

// The register of a broadcast kernel: 8 f32 lanes (AVX2) or 16 (AVX-512).
struct Lanes8 {
  using Reg = __m256;
  static constexpr int kWidth = 8;
  static Reg Zero() { return _mm256_setzero_ps(); }
  static Reg Load(const float* p) { return _mm256_loadu_ps(p); }
  static Reg Broadcast(const float* p) { return _mm256_broadcast_ss(p); }
  static Reg Fma(Reg a, Reg b, Reg c) { return _mm256_fmadd_ps(a, b, c); }
  static void Store(float* p, Reg v) { _mm256_store_ps(p, v); }
};
#if defined(__AVX512F__)
struct Lanes16 {
  using Reg = __m512;
  static constexpr int kWidth = 16;
  static Reg Zero() { return _mm512_setzero_ps(); }
  static Reg Load(const float* p) { return _mm512_loadu_ps(p); }
  static Reg Broadcast(const float* p) { return _mm512_set1_ps(*p); }
  static Reg Fma(Reg a, Reg b, Reg c) { return _mm512_fmadd_ps(a, b, c); }
  static void Store(float* p, Reg v) { _mm512_store_ps(p, v); }
};
constexpr int kBroadcastMaxQueries = 2 * Lanes16::kWidth;
#else
constexpr int kBroadcastMaxQueries = kFusedMaxQueries;
#endif

// R rows at a time against the queries in V registers of L lanes (qt: per element j, the
// queries' element j, zero-padded to L::kWidth * V lanes).
template <class L, int R, int V>
void BroadcastRows(const float* rows, int64_t count, int64_t dim, const float* qt, int q_count,
                   float* out, int64_t out_stride) {
  using Reg = typename L::Reg;
  alignas(64) float scores[L::kWidth * V];
  for (int64_t r = 0; r + R <= count; r += R) {
    const float* row = rows + r * dim;
    Reg acc[R][V];
    TDA_UNROLL
    for (int a = 0; a < R; ++a) {
      TDA_UNROLL
      for (int k = 0; k < V; ++k) acc[a][k] = L::Zero();
    }
    for (int64_t j = 0; j < dim; ++j) {
      if (j % kFloatsPerLine == 0) {  // the next R rows, a line each
        TDA_UNROLL
        for (int a = 0; a < R; ++a) {
          _mm_prefetch(reinterpret_cast<const char*>(row + (R + a) * dim + j), _MM_HINT_T0);
        }
      }
      Reg v[V];
      TDA_UNROLL
      for (int k = 0; k < V; ++k) v[k] = L::Load(qt + (j * V + k) * L::kWidth);
      TDA_UNROLL
      for (int a = 0; a < R; ++a) {
        const Reg x = L::Broadcast(row + a * dim + j);
        TDA_UNROLL
        for (int k = 0; k < V; ++k) acc[a][k] = L::Fma(x, v[k], acc[a][k]);
      }
    }
    TDA_UNROLL
    for (int a = 0; a < R; ++a) {
      TDA_UNROLL
      for (int k = 0; k < V; ++k) L::Store(scores + k * L::kWidth, acc[a][k]);
      for (int q = 0; q < q_count; ++q) out[r + a + q * out_stride] = scores[q];
    }
  }
}

template <class L, int V>
void BroadcastScore(const float* rows, int64_t count, int64_t dim, const Eigen::MatrixXf& queries,
                    Eigen::Ref<Eigen::MatrixXf> out) {
  const int q_count = static_cast<int>(queries.cols());
  constexpr int kWidth = L::kWidth * V;
  thread_local std::vector<float> qt;
  qt.assign(static_cast<size_t>(dim) * kWidth, 0.0f);
  for (int q = 0; q < q_count; ++q) {
    const float* column = queries.col(q).data();
    for (int64_t j = 0; j < dim; ++j) qt[static_cast<size_t>(j * kWidth + q)] = column[j];
  }
  const int64_t blocked = count / kBroadcastRows * kBroadcastRows;
  BroadcastRows<L, kBroadcastRows, V>(rows, blocked, dim, qt.data(), q_count, out.data(),
                                      out.outerStride());
  BroadcastRows<L, 1, V>(rows + blocked * dim, count - blocked, dim, qt.data(), q_count,
                         out.data() + blocked, out.outerStride());
}

// The broadcast kernel of the narrowest registers that hold kBroadcastMinQueries <= Q <=
// kBroadcastMaxQueries queries.
void BroadcastScoreF32(const float* rows, int64_t count, int64_t dim,
                       const Eigen::MatrixXf& queries, Eigen::Ref<Eigen::MatrixXf> out) {
#if defined(__AVX512F__)
  if (queries.cols() > Lanes16::kWidth) {
    return BroadcastScore<Lanes16, 2>(rows, count, dim, queries, out);
  }
  if (queries.cols() > Lanes8::kWidth) {
    return BroadcastScore<Lanes16, 1>(rows, count, dim, queries, out);
  }
#endif
  BroadcastScore<Lanes8, 1>(rows, count, dim, queries, out);
}

#endif  // TDA_FUSED_SCAN

}  // namespace

int FusedMaxQueries(RowDType dtype) {
#if TDA_FUSED_SCAN
  if (dtype == RowDType::kF32) return kBroadcastMaxQueries;
#endif
  (void)dtype;
  return kFusedMaxQueries;
}

bool UsesFusedKernel(RowDType dtype, int64_t queries) {
#if TDA_FUSED_SCAN
  if (queries < 1 || queries > FusedMaxQueries(dtype)) return false;
  if (dtype == RowDType::kBF16) return true;
  // One f32 query is a GEMV (Eigen's, bandwidth-bound); 2 to 8 read each row once here
  // instead of going through SGEMM tiles.
  if (dtype == RowDType::kF32) return queries >= 2;
#if defined(__F16C__)
  if (dtype == RowDType::kF16) return true;
#endif
#endif
  return false;
}

void ScoreRows(const char* rows, int64_t count, int64_t dim, RowDType dtype,
               const Eigen::MatrixXf& queries, Eigen::Ref<Eigen::MatrixXf> out) {
  if (count <= 0) return;
  if (dtype == RowDType::kF32 && queries.cols() == 1) {  // GEMV: bandwidth-bound
    Eigen::Map<const RowMajor> f32(reinterpret_cast<const float*>(rows), count, dim);
    out.noalias() = f32 * queries;
    return;
  }
#if TDA_FUSED_SCAN
  if (UsesFusedKernel(dtype, queries.cols())) {
    if (dtype == RowDType::kF32 && queries.cols() >= kBroadcastMinQueries) {
      return BroadcastScoreF32(reinterpret_cast<const float*>(rows), count, dim, queries, out);
    }
    switch (dtype) {
      case RowDType::kF32: return FusedScore<RowDType::kF32>(rows, count, dim, queries, out);
      case RowDType::kBF16: return FusedScore<RowDType::kBF16>(rows, count, dim, queries, out);
      case RowDType::kF16: return FusedScore<RowDType::kF16>(rows, count, dim, queries, out);
    }
  }
#endif
  TiledGemm(rows, count, dim, dtype, queries, out);
}

}  // namespace tda
