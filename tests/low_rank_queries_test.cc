// Low-rank query batches (attribution/low_rank_queries.h) on a real index: a model trained on
// 2000 Fashion-MNIST images, their projected gradients (8 per side), EK-FAC queries of real
// test images. At full rank the top-k is the exact scan's; at low rank every returned score is
// the exact score of its row (recall printed); what needs every row's score is refused.
#include "attribution/low_rank_queries.h"

#include <algorithm>
#include <cmath>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "api/api_conversion.h"
#include "attribution/attributor.h"
#include "test_support.h"

namespace tda {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::StatusIs;

constexpr int64_t kTopK = 10;

// The trained model's index, built once per process (nullptr after a test failure).
const Attributor* Fixture() {
  static testing::TempDir* dir = new testing::TempDir;
  static Attributor* attributor = [] {
    testing::TinyModelSpec spec;
    spec.train_size = 2000;
    spec.epochs = 2;
    TrainRecipe recipe;
    const std::unique_ptr<Model> model = testing::TrainTinyModel(spec, &recipe);
    return testing::IndexWithRecipe(*model, recipe, dir->path(), "fmnist").release();
  }();
  return attributor;
}

std::vector<Query> TestQueries(int64_t n) {
  std::vector<Query> queries;
  for (int64_t i = 0; i < n; ++i) {
    queries.push_back({absl::StrCat("fashion-mnist/test/", i), {}, -1, {}});
  }
  return queries;
}

AttributeOptions LowRank(int64_t rank, int64_t candidates = 0) {
  AttributeOptions options;
  options.top_k = kTopK;
  options.low_rank = {rank, candidates};
  return options;
}

// Same rows in the same order, scores to float rounding (`scale`: the largest |score|).
void ExpectSameHits(const std::vector<ScoredRow>& low_rank, const std::vector<ScoredRow>& exact,
                    float scale) {
  ASSERT_EQ(low_rank.size(), exact.size());
  for (size_t h = 0; h < exact.size(); ++h) {
    EXPECT_EQ(low_rank[h].row, exact[h].row) << "hit " << h;
    EXPECT_NEAR(low_rank[h].score, exact[h].score, 1e-5 * scale) << "hit " << h;
  }
}

TEST(LowRankQueries, AtFullRankTheTopKIsTheExactScans) {
  ASSERT_NE(Fixture(), nullptr);
  const Attributor& attributor = *Fixture();
  const int64_t dim = attributor.index().dim();
  // 16 queries (basis from the 16 x 16 Gram matrix) and dim + 8 (from the dim x dim one).
  for (const int64_t q_count : {int64_t{16}, dim + 8}) {
    SCOPED_TRACE(absl::StrCat(q_count, " queries, ", dim, " dims"));
    auto prepared = attributor.PrepareQueries(TestQueries(q_count), LowRank(0));
    TDA_ASSERT_OK(prepared);
    const Eigen::MatrixXd& vectors = prepared->preconditioned;
    const int64_t rank = std::min(q_count, dim);
    const QueryBasis basis = LowRankQueryBasis(vectors, rank);
    EXPECT_EQ(basis.basis.cols(), rank);
    auto low_rank = LowRankTopK(attributor.index(), vectors, kTopK, {rank, 0}, Cancellation());
    TDA_ASSERT_OK(low_rank);
    ScanOptions scan;
    scan.top_k = kTopK;
    const ScanResult exact = attributor.index().Scan(vectors.cast<float>(), scan);
    for (int64_t q = 0; q < q_count; ++q) {
      SCOPED_TRACE(absl::StrCat("query ", q));
      float top = 0;
      for (const ScoredRow& hit : exact.proponents[q]) top = std::max(top, std::abs(hit.score));
      for (const ScoredRow& hit : exact.opponents[q]) top = std::max(top, std::abs(hit.score));
      ExpectSameHits(low_rank->proponents[q], exact.proponents[q], top);
      ExpectSameHits(low_rank->opponents[q], exact.opponents[q], top);
    }
  }
}

TEST(LowRankQueries, AtLowRankEveryReturnedScoreIsExact) {
  ASSERT_NE(Fixture(), nullptr);
  const Attributor& attributor = *Fixture();
  const std::vector<Query> queries = TestQueries(16);
  AttributeOptions exact_options;
  exact_options.top_k = kTopK;
  exact_options.return_scores = true;
  auto exact = attributor.Attribute(queries, exact_options);
  TDA_ASSERT_OK(exact);
  auto low_rank = attributor.Attribute(queries, LowRank(2));
  TDA_ASSERT_OK(low_rank);
  double recall = 0;
  for (size_t q = 0; q < queries.size(); ++q) {
    SCOPED_TRACE(absl::StrCat("query ", q));
    const QueryResult& l = (*low_rank)[q];
    const QueryResult& e = (*exact)[q];
    EXPECT_TRUE(l.source_totals.empty());  // the low-rank path ran, not the exact scan
    ASSERT_FALSE(l.proponents.empty());
    ASSERT_FALSE(l.opponents.empty());
    float scale = 0;
    for (float s : e.scores) scale = std::max(scale, std::abs(s));
    for (const std::vector<Hit>* hits : {&l.proponents, &l.opponents}) {
      const bool proponents = hits == &l.proponents;
      for (size_t h = 0; h < hits->size(); ++h) {
        const Hit& hit = (*hits)[h];
        // The exact score of that row, not its rank-2 estimate.
        EXPECT_NEAR(hit.score, e.scores[hit.row], 1e-6 * scale) << "row " << hit.row;
        EXPECT_TRUE(proponents ? hit.score > 0 : hit.score < 0) << "row " << hit.row;
        if (h > 0) {
          EXPECT_TRUE(proponents ? hit.score <= (*hits)[h - 1].score
                                 : hit.score >= (*hits)[h - 1].score);
        }
      }
    }
    recall += (testing::HitRecall(l.proponents, e.proponents) +
               testing::HitRecall(l.opponents, e.opponents)) /
              2;
  }
  recall /= static_cast<double>(queries.size());
  std::cout << "[ LOW RANK ] rank 2 of 16 EK-FAC queries, 100 candidates: recall@" << kTopK
            << " against the exact scan " << recall << " (" << attributor.index().rows()
            << " rows)\n";
  // More candidates can only find more of the exact top-k.
  auto wider = attributor.Attribute(queries, LowRank(2, 300));
  TDA_ASSERT_OK(wider);
  double wider_recall = 0;
  for (size_t q = 0; q < queries.size(); ++q) {
    wider_recall += (testing::HitRecall((*wider)[q].proponents, (*exact)[q].proponents) +
                     testing::HitRecall((*wider)[q].opponents, (*exact)[q].opponents)) /
                    2;
  }
  wider_recall /= static_cast<double>(queries.size());
  std::cout << "[ LOW RANK ] with 300 candidates: recall@" << kTopK << " " << wider_recall << "\n";
  EXPECT_GE(wider_recall, recall);
}

TEST(LowRankQueries, WhatNeedsEveryScoreOrAnotherCandidateSourceIsRefused) {
  ASSERT_NE(Fixture(), nullptr);
  const Attributor& attributor = *Fixture();
  const std::vector<Query> queries = TestQueries(4);
  AttributeOptions scores = LowRank(2);
  scores.return_scores = true;
  EXPECT_THAT(attributor.Attribute(queries, scores),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("query_rank"), HasSubstr("return_scores"))));
  AttributeOptions documents = LowRank(2);
  documents.group_by_document = true;
  EXPECT_THAT(attributor.Attribute(queries, documents),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("query_rank"), HasSubstr("group_by_document"))));
  AttributeOptions approximate = LowRank(2);
  approximate.approximate.enabled = true;
  EXPECT_THAT(attributor.Attribute(queries, approximate),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("query_rank"), HasSubstr("approximate"))));
  EXPECT_THAT(attributor.Attribute(queries, LowRank(2, kTopK - 1)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("low_rank_candidates")));
  EXPECT_THAT(attributor.Attribute(queries, LowRank(0, 50)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("low_rank_candidates"), HasSubstr("query_rank"))));
  EXPECT_THAT(attributor.Attribute(queries, LowRank(kMaxQueryRank + 1)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("query_rank")));
  // The two fields survive the wire (api/api_conversion), as the server reads them.
  std::vector<Query> parsed;
  AttributeOptions read;
  TDA_ASSERT_OK(
      AttributeRequestFromProto(AttributeRequestToProto(queries, LowRank(3, 40)), &parsed, &read));
  EXPECT_EQ(read.low_rank.rank, 3);
  EXPECT_EQ(read.low_rank.candidates, 40);
}

}  // namespace
}  // namespace tda
