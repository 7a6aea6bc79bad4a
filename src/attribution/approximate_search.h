// The options of approximate top-k (AttributeRequest.approximate; the search itself is
// attribution/approximate_scan.h) and their validation, which needs no index: tda-server runs
// it with the rest of the request's checks before a call queues (query_validation.h), and the
// request fuzzer links it (this file and its .cc need neither FAISS nor LibTorch).
#pragma once

#include <cstdint>

#include "absl/status/status.h"

namespace tda {

inline constexpr int64_t kMaxApproximateCandidates = 100000;

struct ApproximateSearch {
  bool enabled = false;
  int64_t nprobe = 0;      // IVF: lists probed; 0: the ANN's default (AnnSearchParameters)
  int64_t ef_search = 0;   // HNSW: search list size (at least the candidates); 0: 64
  int64_t candidates = 0;  // rows fetched per query and direction; 0: 10 x top_k
};

// kInvalidArgument when `search` (enabled) asks for what it cannot give: return_scores or
// group_by_document (they need every row's score: ask without approximate), candidates
// outside [top_k, kMaxApproximateCandidates], negative nprobe / ef_search. OK when disabled.
[[nodiscard]] absl::Status ValidateApproximateSearch(const ApproximateSearch& search, int64_t top_k,
                                                     bool return_scores, bool group_by_document);

}  // namespace tda
