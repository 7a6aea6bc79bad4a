// Long documents as windows of the model's context: one index row per window
// ("chunk").
//
// A document of n tokens is the stream s = [EOD, t_0, ..., t_{n-1}, EOD]; its
// prediction positions are p in [0, n + 1): input s[p], target s[p + 1]. A
// window covers the positions [begin, end) (end - begin <= context) and carries
// loss from loss_begin on: with a stride shorter than the context the windows
// overlap, and each position's loss is counted in the first window that holds
// it only (the sliding-window evaluation of language models), so the chunks'
// scores sum to the document's. A document that fits is one window, as before.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tda {

struct ChunkWindow {
  int64_t begin = 0;       // first prediction position
  int64_t end = 0;         // one past the last
  int64_t loss_begin = 0;  // positions in [begin, loss_begin) carry no loss
};

// The tokens around a document's: s[0] (its first input) and s[n + 1] (its last target, and the
// input of padding). The byte tokenizer has one for both (kEndOfDocument); a Hugging Face
// tokenizer its BOS and EOS (data/token_rows.h: DocumentMarkersOf).
struct DocumentMarkers {
  constexpr DocumentMarkers(int32_t both) : begin(both), end(both) {}  // NOLINT: one marker
  constexpr DocumentMarkers(int32_t begin_marker, int32_t end_marker)
      : begin(begin_marker), end(end_marker) {}
  int32_t begin;
  int32_t end;
};

// The windows of a document with `positions` prediction positions (n + 1).
// stride == 0: one window cut at the context (truncation, the rows of models
// trained before chunking). Else windows start at 0, stride, 2 stride, ...
// until one reaches the end; stride <= context.
std::vector<ChunkWindow> ChunkWindows(int64_t positions, int64_t context, int64_t stride);
// How many windows ChunkWindows gives, and its window k (k < that count), without building the
// others: what a reader that serves one row at a time needs.
int64_t ChunkCount(int64_t positions, int64_t context, int64_t stride);
ChunkWindow ChunkWindowAt(int64_t positions, int64_t context, int64_t stride, int64_t k);

// Writes the row of `window` into tokens[0, context) and targets[0, context):
// positions past the window are padding (input markers.end, target
// kNoTarget); targets before loss_begin or before `prompt_tokens` (instruction
// data: the prompt carries no loss) are kNoTarget. `doc` holds the document's n
// tokens.
void WriteChunkRow(const int32_t *doc, int64_t n, const ChunkWindow &window, int64_t context,
                   int64_t prompt_tokens, const DocumentMarkers &markers, int32_t *tokens,
                   int32_t *targets);

// The text of a chunk row: the bytes its window predicts (row position r predicts byte
// window.begin + r of a byte-token document), or the whole text of a one-window document.
std::string ChunkText(std::string_view text, const ChunkWindow& window, int64_t chunks);

// The id of chunk k of a document cut into `chunks` windows: the document's id
// when it is one window, else "<id>#<k>".
std::string ChunkId(std::string_view document_id, int64_t k, int64_t chunks);

// The document of a row id: the id without a trailing "#<digits>".
std::string_view DocumentOfRow(std::string_view row_id);

// True when `document_id` ends like a chunk id ("#<digits>"): such ids are
// refused when documents are chunked, since their rows could not be told from
// another document's chunks.
bool LooksLikeChunkId(std::string_view document_id);

}  // namespace tda
