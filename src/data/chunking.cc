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

std::vector<ChunkWindow> ChunkWindows(int64_t positions, int64_t context, int64_t stride) {
  std::vector<ChunkWindow> windows;
  if (stride <= 0 || positions <= context) {
    windows.push_back({0, std::min(positions, context), 0});
    return windows;
  }
  int64_t scored = 0;  // positions before this already carry loss in an earlier window
  for (int64_t begin = 0;; begin += stride) {
    const int64_t end = std::min(begin + context, positions);
    windows.push_back({begin, end, std::max(begin, scored)});
    scored = end;
    if (end == positions) break;
  }
  return windows;
}

void WriteChunkRow(const int32_t *doc, int64_t n, const ChunkWindow &window, int64_t context,
                   int64_t prompt_tokens, int32_t end_of_document, int32_t *tokens,
                   int32_t *targets) {
  // s[i]: EOD at 0 and n + 1, doc[i - 1] between.
  auto stream = [&](int64_t i) { return i == 0 || i > n ? end_of_document : doc[i - 1]; };
  for (int64_t r = 0; r < context; ++r) {
    const int64_t p = window.begin + r;
    if (p >= window.end) {
      tokens[r] = end_of_document;
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
