#include "attribution/document_totals.h"

#include <algorithm>
#include <cmath>
#include <string_view>
#include <unordered_map>

#include "data/chunking.h"

namespace tda {

IndexDocuments::IndexDocuments(const GradientIndex& index, bool chunked)
    : index_(index), chunked_(chunked) {
  if (!chunked_) return;
  const int64_t n = index.rows();
  std::unordered_map<std::string_view, int64_t> number;  // views into the index's sample ids
  std::vector<int64_t> document_of_row(static_cast<size_t>(n));
  std::vector<int64_t> count;
  for (int64_t r = 0; r < n; ++r) {
    auto [it, added] =
        number.try_emplace(DocumentOfRow(index.sample(r).id), static_cast<int64_t>(first_.size()));
    if (added) {
      first_.push_back(r);
      count.push_back(0);
    }
    document_of_row[static_cast<size_t>(r)] = it->second;
    ++count[static_cast<size_t>(it->second)];
  }
  row_begin_.assign(first_.size() + 1, 0);
  for (size_t d = 0; d < first_.size(); ++d) row_begin_[d + 1] = row_begin_[d] + count[d];
  rows_.resize(static_cast<size_t>(n));
  std::vector<int64_t> next(row_begin_.begin(), row_begin_.end() - 1);
  for (int64_t r = 0; r < n; ++r) rows_[static_cast<size_t>(next[document_of_row[r]]++)] = r;
}

std::string IndexDocuments::id(int64_t document) const {
  const std::string& row_id = index_.sample(row_at(row_begin(document))).id;
  return chunked_ ? std::string(DocumentOfRow(row_id)) : row_id;
}

const std::string& IndexDocuments::source(int64_t document) const {
  return index_.sample(row_at(row_begin(document))).source;
}

std::vector<int64_t> IndexDocuments::live_rows(int64_t document) const {
  std::vector<int64_t> live;
  for (int64_t i = row_begin(document); i < row_begin(document + 1); ++i) {
    if (!index_.is_deleted(row_at(i))) live.push_back(row_at(i));
  }
  return live;
}

void IndexDocuments::Rank(const float* scores, int64_t top_k,
                          std::vector<DocumentTotal>* proponents,
                          std::vector<DocumentTotal>* opponents) const {
  struct Summed {
    int64_t document;
    double sum;
  };
  std::vector<Summed> positive, negative;
  for (int64_t d = 0; d < size(); ++d) {
    double sum = 0;
    int64_t live = 0;
    for (int64_t i = row_begin(d); i < row_begin(d + 1); ++i) {
      const float score = scores[row_at(i)];
      if (std::isnan(score)) continue;
      sum += score;
      ++live;
    }
    if (live > 0 && sum > 0) positive.push_back({d, sum});
    if (live > 0 && sum < 0) negative.push_back({d, sum});
  }
  auto take = [&](std::vector<Summed>& summed, bool descending, std::vector<DocumentTotal>* out) {
    auto before = [descending](const Summed& a, const Summed& b) {
      if (a.sum != b.sum) return descending ? a.sum > b.sum : a.sum < b.sum;
      return a.document < b.document;
    };
    const size_t k = std::min(summed.size(), static_cast<size_t>(std::max<int64_t>(0, top_k)));
    std::partial_sort(summed.begin(), summed.begin() + k, summed.end(), before);
    out->clear();
    for (size_t j = 0; j < k; ++j) {
      const int64_t d = summed[j].document;
      DocumentTotal total;
      total.document_id = id(d);
      total.source = source(d);
      total.sum = summed[j].sum;
      for (int64_t i = row_begin(d); i < row_begin(d + 1); ++i) {
        const float score = scores[row_at(i)];
        if (std::isnan(score)) continue;
        ++total.chunks;
        if (total.best_row < 0 ||
            (descending ? score > total.best_score : score < total.best_score)) {
          total.best_row = row_at(i);
          total.best_score = score;
        }
      }
      total.best_row_id = index_.sample(total.best_row).id;
      out->push_back(std::move(total));
    }
  };
  take(positive, true, proponents);
  take(negative, false, opponents);
}

}  // namespace tda
