// Answers per training document: the rows of an index grouped by the document they come from, and a
// query's scores summed per document.
//
// A language model trained with chunking (recipe chunk_stride > 0, data/chunking.h) indexes a long
// document as several rows "<document id>#<k>"; every other row (images, documents that fit the
// context, any row of a model trained without chunking) is a document of its own. A document's
// total is the sum, in double and in row order, of its live (not deleted) rows' scores: exactly the
// sum of those rows' entries of QueryResult::scores. Its chunks' losses count every position once
// (ChunkWindows), so the total is the influence of the whole document. Immutable and thread-safe
// once built.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "index/gradient_index.h"

namespace tda {

// One training document's share of a query's scores.
struct DocumentTotal {
  std::string document_id;
  std::string source;
  int64_t chunks = 0;     // live rows of the document
  double sum = 0;         // their scores' sum, in double
  int64_t best_row = -1;  // its row scoring highest (proponents) or lowest (opponents)
  std::string best_row_id;
  double best_score = 0;
};

class IndexDocuments {
 public:
  // The documents of `index`'s rows, in order of first appearance. `chunked`: rows whose ids end
  // in "#<digits>" belong to DocumentOfRow(id) (a model trained with chunking); otherwise every
  // row is its own document, and nothing is stored. `index` must outlive this.
  IndexDocuments(const GradientIndex& index, bool chunked);

  int64_t size() const { return chunked_ ? static_cast<int64_t>(first_.size()) : index_.rows(); }
  std::string id(int64_t document) const;
  const std::string& source(int64_t document) const;
  // The live rows of a document, ascending (empty when all are deleted).
  std::vector<int64_t> live_rows(int64_t document) const;

  // From one query's score of every index row (rows() values, NaN = deleted, skipped): the
  // top_k documents summing strictly above zero, descending, and the top_k summing strictly
  // below zero, ascending; ties go to the earlier document.
  void Rank(const float* scores, int64_t top_k, std::vector<DocumentTotal>* proponents,
            std::vector<DocumentTotal>* opponents) const;

 private:
  // Rows of document d: rows_[row_begin(d), row_begin(d + 1)) (unchunked: the row d itself).
  int64_t row_begin(int64_t document) const { return chunked_ ? row_begin_[document] : document; }
  int64_t row_at(int64_t i) const { return chunked_ ? rows_[i] : i; }

  const GradientIndex& index_;
  bool chunked_ = false;
  std::vector<int64_t> first_;      // chunked: the first row of each document
  std::vector<int64_t> row_begin_;  // chunked: CSR offsets into rows_, size() + 1
  std::vector<int64_t> rows_;
};

}  // namespace tda
