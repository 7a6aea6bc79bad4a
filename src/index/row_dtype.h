// Element types of the gradient rows stored in an index (docs/index_format.md, "dtype"): f32
// (IEEE binary32), bf16 (bfloat16: the top 16 bits of a binary32) and f16 (IEEE binary16).
// Conversions from f32 round to nearest, ties to even (Eigen::bfloat16 / Eigen::half, which
// also keep NaN a NaN and saturate nothing: f16 overflows to +-inf above 65504).
// Header-only; every function is thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include <Eigen/Core>

#if defined(__AVX2__) || defined(__F16C__)
#include <immintrin.h>
#endif

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace tda {

enum class RowDType { kF32, kBF16, kF16 };

static_assert(sizeof(Eigen::bfloat16) == 2 && sizeof(Eigen::half) == 2,
              "bf16 and f16 rows are stored as 2-byte elements");

// The manifest name ("f32", "bf16", "f16"), also the shard file extension.
inline const char* RowDTypeName(RowDType dtype) {
  switch (dtype) {
    case RowDType::kBF16:
      return "bf16";
    case RowDType::kF16:
      return "f16";
    case RowDType::kF32:
      break;
  }
  return "f32";
}

// Bytes per element: 4 for f32, 2 for bf16 and f16.
inline size_t RowDTypeBytes(RowDType dtype) { return dtype == RowDType::kF32 ? 4 : 2; }

// Parses a manifest / command-line name; kInvalidArgument for anything else.
[[nodiscard]] inline absl::StatusOr<RowDType> ParseRowDType(const std::string& name) {
  if (name == "f32") return RowDType::kF32;
  if (name == "bf16") return RowDType::kBF16;
  if (name == "f16") return RowDType::kF16;
  return absl::InvalidArgumentError(
      absl::StrCat("row dtype must be f32, bf16 or f16, got '", name, "'"));
}

// Writes `count` floats as `dtype` into `out` (count * RowDTypeBytes(dtype) bytes), rounding to
// nearest even. `out` needs no particular alignment.
inline void ConvertFromF32(const float* in, size_t count, RowDType dtype, void* out) {
  char* bytes = static_cast<char*>(out);
  switch (dtype) {
    case RowDType::kF32:
      std::memcpy(out, in, count * sizeof(float));
      return;
    case RowDType::kBF16:
      for (size_t i = 0; i < count; ++i) {
        const Eigen::bfloat16 v(in[i]);
        std::memcpy(bytes + 2 * i, &v, 2);
      }
      return;
    case RowDType::kF16:
      for (size_t i = 0; i < count; ++i) {
        const Eigen::half v(in[i]);
        std::memcpy(bytes + 2 * i, &v, 2);
      }
      return;
  }
}

// Reads `count` elements of `dtype` from `in` into floats (exact: every bf16 and f16 value is a
// float). `in` must be aligned to RowDTypeBytes(dtype). This is the inner loop of a bf16 / f16
// index scan, so it uses 8-wide AVX2 / F16C conversions where the build targets them; the
// scalar tail (and fallback) is Eigen's conversion, which gives the same values.
inline void ConvertToF32(const void* in, size_t count, RowDType dtype, float* out) {
  size_t i = 0;
  switch (dtype) {
    case RowDType::kF32:
      std::memcpy(out, in, count * sizeof(float));
      return;
    case RowDType::kBF16: {
      const auto* v = static_cast<const Eigen::bfloat16*>(in);
#if defined(__AVX2__)
      for (; i + 8 <= count; i += 8) {  // bf16 bits b are the float with bits b << 16
        __m128i bits = _mm_loadu_si128(reinterpret_cast<const __m128i*>(v + i));
        __m256i wide = _mm256_slli_epi32(_mm256_cvtepu16_epi32(bits), 16);
        _mm256_storeu_ps(out + i, _mm256_castsi256_ps(wide));
      }
#endif
      for (; i < count; ++i) out[i] = static_cast<float>(v[i]);
      return;
    }
    case RowDType::kF16: {
      const auto* v = static_cast<const Eigen::half*>(in);
#if defined(__F16C__)
      for (; i + 8 <= count; i += 8) {
        __m128i bits = _mm_loadu_si128(reinterpret_cast<const __m128i*>(v + i));
        _mm256_storeu_ps(out + i, _mm256_cvtph_ps(bits));
      }
#endif
      for (; i < count; ++i) out[i] = static_cast<float>(v[i]);
      return;
    }
  }
}

}  // namespace tda
