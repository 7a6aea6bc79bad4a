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

#if defined(__AVX__)
#include <immintrin.h>
#endif

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

// The k best rows seen so far, kept as a buffer of at most 2k candidates: an offer that ranks
// before the bar is appended, and a full buffer is cut back to its k best (nth_element), whose
// worst becomes the bar. Each offer costs O(1) amortised, where a heap of k paid log k for each
// of the ~k ln(n / k) rows that enter. Offering 64 queries' 60,000 scores to keep 100 of each
// sign took 8.3 ms with a heap, 5.7 ms with this buffer and 4.4 ms with QueryTopRows' vector
// filter as well (one Intel Xeon core). The caller filters what may be ranked (NaN never
// compares well: offer only finite scores).
class TopRows {
 public:
  TopRows(int64_t k, bool largest) : k_(static_cast<size_t>(k)), ranks_{largest} {}
  void Offer(int64_t row, float score) {
    const ScoredRow candidate{row, score};
    if (k_ == 0 || (full() && !ranks_(candidate, bar_))) return;
    kept_.push_back(candidate);
    if (kept_.size() >= 2 * k_) Cut();
  }
  // At least the k best offered (more when the buffer was not cut since), unordered.
  const std::vector<ScoredRow>& rows() const { return kept_; }
  // Once k rows were kept, a row that k offered rows rank before: an offer that does not rank
  // before it is refused, so a caller may skip such offers (REQUIRES full() for worst()).
  bool full() const { return has_bar_; }
  const ScoredRow& worst() const { return bar_; }

 private:
  void Cut() {
    std::nth_element(kept_.begin(), kept_.begin() + static_cast<std::ptrdiff_t>(k_ - 1),
                     kept_.end(), ranks_);
    kept_.resize(k_);
    bar_ = kept_[k_ - 1];
    has_bar_ = true;
  }

  size_t k_;
  ScoreOrder ranks_;
  std::vector<ScoredRow> kept_;
  ScoredRow bar_{};
  bool has_bar_ = false;
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
    auto offer = [&](int64_t i) {
      const float score = scores[i];
      if (score > floor) {
        largest.Offer(first_row + i, score);
        if (largest.full()) floor = largest.worst().score;
      }
      if (score < ceiling) {
        smallest.Offer(first_row + i, score);
        if (smallest.full()) ceiling = smallest.worst().score;
      }
    };
    // Once the bars are up almost no score enters: a chunk is tested at once (vectorised, no
    // branch per score) and only the scores it flags are offered, in row order.
    int64_t i = 0;
    for (; i + kChunk <= count; i += kChunk) {
      for (uint32_t flagged = Outside(scores + i, floor, ceiling); flagged != 0;
           flagged &= flagged - 1) {
        offer(i + __builtin_ctz(flagged));
      }
    }
    for (; i < count; ++i) offer(i);
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
  static constexpr int64_t kChunk = 16;
  // Bit i set when scores[i] of the kChunk is above `floor` or below `ceiling` (NaN is neither).
  static uint32_t Outside(const float* scores, float floor, float ceiling) {
#if defined(__AVX512F__)
    const __m512 x = _mm512_loadu_ps(scores);
    return _mm512_cmp_ps_mask(x, _mm512_set1_ps(floor), _CMP_GT_OQ) |
           _mm512_cmp_ps_mask(x, _mm512_set1_ps(ceiling), _CMP_LT_OQ);
#elif defined(__AVX__)
    const __m256 lo = _mm256_set1_ps(floor), hi = _mm256_set1_ps(ceiling);
    const __m256 a = _mm256_loadu_ps(scores), b = _mm256_loadu_ps(scores + 8);
    const int low = _mm256_movemask_ps(
        _mm256_or_ps(_mm256_cmp_ps(a, lo, _CMP_GT_OQ), _mm256_cmp_ps(a, hi, _CMP_LT_OQ)));
    const int high = _mm256_movemask_ps(
        _mm256_or_ps(_mm256_cmp_ps(b, lo, _CMP_GT_OQ), _mm256_cmp_ps(b, hi, _CMP_LT_OQ)));
    return static_cast<uint32_t>(low) | (static_cast<uint32_t>(high) << 8);
#else
    uint32_t flagged = 0;
    for (int64_t i = 0; i < kChunk; ++i) {
      if (scores[i] > floor || scores[i] < ceiling) flagged |= 1u << i;
    }
    return flagged;
#endif
  }

  std::vector<TopRows> largest_, smallest_;
  float bound_;  // the first offer must beat -bound_ (largest) or bound_ (smallest)
};

}  // namespace tda
