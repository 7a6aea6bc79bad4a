#include "data/chunking.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace tda {
namespace {

constexpr int32_t kNoLoss = -1;

// Length of the trailing "#<digits>" of `id` (0 when it has none).
size_t ChunkSuffixLength(std::string_view id) {
  size_t digits = 0;
  while (digits < id.size() && id[id.size() - 1 - digits] >= '0' &&
         id[id.size() - 1 - digits] <= '9') {
    ++digits;
  }
  if (digits == 0 || digits + 1 >= id.size() || id[id.size() - 1 - digits] != '#') return 0;
  return digits + 1;
}

}  // namespace

int64_t ChunkCount(int64_t positions, int64_t context, int64_t stride) {
  if (stride <= 0 || positions <= context) return 1;
  return 1 + (positions - context + stride - 1) / stride;
}

ChunkWindow ChunkWindowAt(int64_t positions, int64_t context, int64_t stride, int64_t k) {
  if (stride <= 0 || positions <= context) return {0, std::min(positions, context), 0};
  const int64_t begin = k * stride;
  // Window k - 1 is not the last, so it ends at its begin + context; stride <= context, so that
  // end is at or past this window's begin: the first position it has not scored.
  const int64_t loss_begin = k == 0 ? 0 : (k - 1) * stride + context;
  return {begin, std::min(begin + context, positions), loss_begin};
}

std::vector<ChunkWindow> ChunkWindows(int64_t positions, int64_t context, int64_t stride) {
  const int64_t count = ChunkCount(positions, context, stride);
  std::vector<ChunkWindow> windows;
  windows.reserve(static_cast<size_t>(count));
  for (int64_t k = 0; k < count; ++k) {
    windows.push_back(ChunkWindowAt(positions, context, stride, k));
  }
  return windows;
}

void WriteChunkRow(const int32_t *doc, int64_t n, const ChunkWindow &window, int64_t context,
                   int64_t prompt_tokens, const DocumentMarkers &markers, int32_t *tokens,
                   int32_t *targets) {
  // s[i]: markers.begin at 0, markers.end at n + 1, doc[i - 1] between.
  auto stream = [&](int64_t i) {
    return i == 0 ? markers.begin : i > n ? markers.end : doc[i - 1];
  };
  for (int64_t r = 0; r < context; ++r) {
    const int64_t p = window.begin + r;
    if (p >= window.end) {
      tokens[r] = markers.end;
      targets[r] = kNoLoss;
      continue;
    }
    tokens[r] = stream(p);
    targets[r] = p >= window.loss_begin && p >= prompt_tokens ? stream(p + 1) : kNoLoss;
  }
}

std::string ChunkText(std::string_view text, const ChunkWindow& window, int64_t chunks) {
  if (chunks <= 1) return std::string(text);
  const int64_t n = static_cast<int64_t>(text.size());
  const int64_t begin = std::min(window.begin, n);
  return std::string(text.substr(static_cast<size_t>(begin),
                                 static_cast<size_t>(std::min(window.end, n) - begin)));
}

std::string ChunkId(std::string_view document_id, int64_t k, int64_t chunks) {
  if (chunks <= 1) return std::string(document_id);
  return absl::StrCat(absl::string_view(document_id.data(), document_id.size()), "#", k);
}

std::string_view DocumentOfRow(std::string_view row_id) {
  return row_id.substr(0, row_id.size() - ChunkSuffixLength(row_id));
}

bool LooksLikeChunkId(std::string_view document_id) { return ChunkSuffixLength(document_id) > 0; }

}  // namespace tda
