// The parroting check: the longest span of text a completion shares verbatim with a training
// document (byte-exact, the unit the byte-level GPT sees).
#pragma once

#include <cstdint>
#include <string_view>

namespace tda {

struct SharedSpan {
  int64_t query_offset = 0;     // where the span starts in the query text
  int64_t document_offset = 0;  // where it starts in the document
  int64_t length = 0;           // bytes; 0 when the texts share no byte
};

// Longest common substring of `query` and `document` (dynamic programming, O(|q| |d|) time,
// O(|d|) memory; the first longest span in query order wins ties).
SharedSpan LongestSharedSpan(std::string_view query, std::string_view document);

}  // namespace tda
