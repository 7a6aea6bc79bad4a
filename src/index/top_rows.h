// The k best scored rows of a stream of (row, score) offers, as a scan ranks them: largest
// scores first (proponents) or smallest first (opponents), ties to the lower row. Used by
// GradientIndex::Scan for its per-thread top-k and by the low-rank query path
// (attribution/low_rank_queries.h) for its candidates, both through QueryTopRows. Not
// thread-safe: one TopRows (or QueryTopRows) per thread.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
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

// One thread's k largest and k smallest rows of every query of a scan. With `split_by_sign`,
// only strictly positive scores rank as largest (proponents) and strictly negative ones as
// smallest (opponents); without, every finite score is offered both ways. NaN never ranks.
// REQUIRES: each thread offers its rows in ascending order (a static schedule over blocks in
// row order), so that a score tied with the worst kept may be skipped by score alone.
class QueryTopRows {
 public:
  QueryTopRows(int64_t queries, int64_t k, bool split_by_sign)
      : largest_(static_cast<size_t>(queries), TopRows(k, true)),
        smallest_(static_cast<size_t>(queries), TopRows(k, false)),
        bound_(split_by_sign ? 0.0f : std::numeric_limits<float>::infinity()) {}

  // Offers scores[i] as row first_row + i of query q, for i < count.
  void OfferColumn(int64_t q, int64_t first_row, const float* scores, int64_t count) {
    TopRows& largest = largest_[static_cast<size_t>(q)];
    TopRows& smallest = smallest_[static_cast<size_t>(q)];
    float floor = largest.full() ? largest.worst().score : -bound_;
    float ceiling = smallest.full() ? smallest.worst().score : bound_;
    for (int64_t i = 0; i < count; ++i) {
      const float score = scores[i];
      if (score > floor) {
        largest.Offer(first_row + i, score);
        if (largest.full()) floor = largest.worst().score;
      }
      if (score < ceiling) {
        smallest.Offer(first_row + i, score);
        if (smallest.full()) ceiling = smallest.worst().score;
      }
    }
  }

  // The k best of query q over every thread's `tops`, best first (the same rows whatever
  // the thread count).
  static std::vector<ScoredRow> Merge(const std::vector<QueryTopRows>& tops, int64_t q,
                                      int64_t k, bool largest) {
    std::vector<ScoredRow> merged;
    for (const QueryTopRows& top : tops) {
      const TopRows& rows = (largest ? top.largest_ : top.smallest_)[static_cast<size_t>(q)];
      merged.insert(merged.end(), rows.rows().begin(), rows.rows().end());
    }
    return BestRows(std::move(merged), k, largest);
  }

 private:
  std::vector<TopRows> largest_, smallest_;
  float bound_;  // the first offer must beat -bound_ (largest) or bound_ (smallest)
};

}  // namespace tda
