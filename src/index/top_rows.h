// The k best scored rows of a stream of (row, score) offers, as a scan ranks them: largest
// scores first (proponents) or smallest first (opponents), ties to the lower row. Used by
// GradientIndex::Scan for its per-thread top-k and by the low-rank query path
// (attribution/low_rank_queries.h) for its candidates. Not thread-safe: one TopRows per thread.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "index/gradient_index.h"

namespace tda {

// "a ranks before b" for proponents (largest first) or opponents; ties: lower row first.
struct ScoreOrder {
  bool largest;
  bool operator()(const ScoredRow& a, const ScoredRow& b) const {
    if (a.score != b.score) return largest ? a.score > b.score : a.score < b.score;
    return a.row < b.row;
  }
};

// The k best rows seen so far: a heap whose top is the worst one kept. The caller filters
// what may be ranked (NaN never compares well: offer only finite scores).
class TopRows {
 public:
  TopRows(int64_t k, bool largest) : k_(static_cast<size_t>(k)), ranks_{largest} {}
  void Offer(int64_t row, float score) {
    const ScoredRow candidate{row, score};
    if (heap_.size() < k_) {
      heap_.push_back(candidate);
      std::push_heap(heap_.begin(), heap_.end(), ranks_);
    } else if (ranks_(candidate, heap_.front())) {
      std::pop_heap(heap_.begin(), heap_.end(), ranks_);
      heap_.back() = candidate;
      std::push_heap(heap_.begin(), heap_.end(), ranks_);
    }
  }
  // Unordered (heap order).
  const std::vector<ScoredRow>& rows() const { return heap_; }
  // Once k rows are kept, the worst of them: an offer that does not rank before it is refused,
  // so a caller may skip such offers (REQUIRES full() for worst()).
  bool full() const { return heap_.size() >= k_; }
  const ScoredRow& worst() const { return heap_.front(); }

 private:
  size_t k_;
  ScoreOrder ranks_;
  std::vector<ScoredRow> heap_;
};

// The k best of several threads' candidates, best first.
inline std::vector<ScoredRow> BestRows(std::vector<ScoredRow> candidates, int64_t k, bool largest) {
  std::sort(candidates.begin(), candidates.end(), ScoreOrder{largest});
  if (static_cast<int64_t>(candidates.size()) > k) candidates.resize(static_cast<size_t>(k));
  return candidates;
}

}  // namespace tda
