// The top-k of an index scan (GradientIndex::Scan): proponents are strictly positive scores and
// opponents strictly negative ones, never the same row, and fewer than top_k when fewer exist
// -- on every scoring path (f32 GEMV, the fused bf16 kernel, GEMM over many queries) and with
// deleted rows (NaN) and rows that score exactly zero. Also the scan's cancellation: a
// cancelled scan stops and says why; ScoreRows against a double-precision reference for every
// batch size a kernel takes (the wide f32 broadcast kernel up to FusedMaxQueries included); and
// the per-thread top rows (index/top_rows.h) against a full sort.
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/atomic_file.h"
#include "index/block_scorer.h"
#include "index/gradient_index.h"
#include "index/index_update.h"
#include "index/index_writer.h"
#include "index/top_rows.h"
#include "test_support.h"

namespace tda {
namespace {

using ::tda::testing::TempDir;
using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

constexpr int64_t kRows = 5000, kDim = 16;

// Random rows whose first coordinate decides the sign of the score against e_0 and whose other
// coordinates add nothing against it: 30% positive, the rest negative, every 50th row zero.
RowMatrix SignedRows() {
  RowMatrix rows = RowMatrix::Random(kRows, kDim);
  for (int64_t i = 0; i < kRows; ++i) {
    const float magnitude = 0.01f + std::abs(rows(i, 0));
    rows(i, 0) = i % 50 == 0 ? 0.0f : (i % 10 < 3 ? magnitude : -magnitude);
  }
  return rows;
}

// Writes `rows` as an index of `dtype` (placeholder model files) and deletes every 7th row.
std::unique_ptr<GradientIndex> WriteIndex(const std::string& dir, const RowMatrix& rows,
                                          RowDType dtype) {
  auto writer = IndexWriter::Create(dir, kDim, /*rows_per_shard=*/1500, dtype);
  EXPECT_TRUE(writer.ok()) << writer.status();
  std::vector<SampleRecord> samples;
  std::vector<std::string> deleted;
  for (int64_t i = 0; i < rows.rows(); ++i) {
    samples.push_back({absl::StrCat("s/", i), "s", 0, ""});
    if (i % 7 == 0) deleted.push_back(samples.back().id);
  }
  EXPECT_TRUE((*writer)->AppendRows(rows.data(), samples).ok());
  EXPECT_TRUE(MakeDirectories(dir + "/model").ok());
  for (const char* f : {"factors.safetensors", "model/model.safetensors", "model/config.json"}) {
    EXPECT_TRUE(WriteFileAtomically(dir + "/" + f, "{}").ok());
  }
  Manifest m;
  m.model_fingerprint = "0123456789abcdef";
  m.layer_dims = {kDim};
  EXPECT_TRUE((*writer)->Finish(m).ok());
  EXPECT_TRUE(DeleteFromIndex(dir, deleted).ok());
  auto index = GradientIndex::Open(dir);
  EXPECT_TRUE(index.ok()) << index.status();
  return index.ok() ? std::move(*index) : nullptr;
}

// Queries: column q is +-e_0 (alternating), so live rows score positive or negative by row.
Eigen::MatrixXf Queries(int64_t count) {
  Eigen::MatrixXf queries = Eigen::MatrixXf::Zero(kDim, count);
  for (int64_t q = 0; q < count; ++q) queries(0, q) = q % 2 == 0 ? 1.0f : -1.0f;
  return queries;
}

void ExpectSignedTopK(const GradientIndex& index, const Eigen::MatrixXf& queries,
                      int64_t top_k) {
  ScanOptions options;
  options.top_k = top_k;
  options.keep_scores = true;
  const ScanResult scan = index.Scan(queries, options);
  ASSERT_TRUE(scan.status.ok()) << scan.status;
  ASSERT_EQ(scan.proponents.size(), static_cast<size_t>(queries.cols()));
  for (int64_t q = 0; q < queries.cols(); ++q) {
    SCOPED_TRACE(absl::StrCat("query ", q, " top_k ", top_k));
    int64_t positive = 0, negative = 0;
    for (int64_t r = 0; r < index.rows(); ++r) {
      const float s = scan.scores(r, q);
      positive += s > 0;
      negative += s < 0;
    }
    ASSERT_GT(positive, 0);
    ASSERT_GT(negative, 0);
    const std::vector<ScoredRow>& pro = scan.proponents[q];
    const std::vector<ScoredRow>& con = scan.opponents[q];
    EXPECT_EQ(static_cast<int64_t>(pro.size()), std::min(top_k, positive));
    EXPECT_EQ(static_cast<int64_t>(con.size()), std::min(top_k, negative));
    std::set<int64_t> seen;
    for (size_t i = 0; i < pro.size(); ++i) {
      EXPECT_GT(pro[i].score, 0) << "row " << pro[i].row;
      EXPECT_FALSE(index.is_deleted(pro[i].row));
      if (i > 0) {
        EXPECT_GE(pro[i - 1].score, pro[i].score);
      }
      seen.insert(pro[i].row);
    }
    for (size_t i = 0; i < con.size(); ++i) {
      EXPECT_LT(con[i].score, 0) << "row " << con[i].row;
      EXPECT_FALSE(index.is_deleted(con[i].row));
      if (i > 0) {
        EXPECT_LE(con[i - 1].score, con[i].score);
      }
      EXPECT_EQ(seen.count(con[i].row), 0u) << "row " << con[i].row << " in both lists";
    }
  }
}

TEST(ScanRanking, TopKBeyondTheSignedRowsReturnsOnlyThoseRowsOnEveryPath) {
  const RowMatrix rows = SignedRows();
  for (RowDType dtype : {RowDType::kF32, RowDType::kBF16}) {
    TempDir dir;
    std::unique_ptr<GradientIndex> index = WriteIndex(dir.path(), rows, dtype);
    ASSERT_NE(index, nullptr);
    ASSERT_GT(index->deleted_rows(), 0);
    // One and two queries (GEMV for f32, the fused kernel for bf16 where built), 12 (GEMM for
    // bf16, a broadcast kernel for f32 on AVX-512) and more than any fused kernel takes (GEMM).
    for (int64_t q : {int64_t{1}, int64_t{2}, int64_t{kFusedMaxQueries} + 4,
                      int64_t{FusedMaxQueries(RowDType::kF32)} + 4}) {
      SCOPED_TRACE(absl::StrCat(RowDTypeName(dtype), ", ", q, " queries, fused kernel: ",
                                UsesFusedKernel(dtype, q) ? "yes" : "no"));
      ExpectSignedTopK(*index, Queries(q), 10000);  // the issue: top_k over the row count
      ExpectSignedTopK(*index, Queries(q), 2000);   // between the two counts
      ExpectSignedTopK(*index, Queries(q), 10);
    }
  }
}

// Every kernel of ScoreRows, each batch size from 1 to past the widest fused one, on a row
// count and width that fill no register block or line exactly: f32 products of the stored
// elements, so within the f32 rounding of a dim-term sum of the reference's scale.
TEST(ScanRanking, ScoreRowsAgreesWithADoubleReferenceForEveryBatchSize) {
  constexpr int64_t kCount = 37, kWidth = 101;
  const RowMatrix rows = RowMatrix::Random(kCount, kWidth);
  for (RowDType dtype : {RowDType::kF32, RowDType::kBF16}) {
    std::vector<char> stored(static_cast<size_t>(kCount * kWidth) * RowDTypeBytes(dtype));
    ConvertFromF32(rows.data(), static_cast<size_t>(kCount * kWidth), dtype, stored.data());
    RowMatrix rounded(kCount, kWidth);
    ConvertToF32(stored.data(), static_cast<size_t>(kCount * kWidth), dtype, rounded.data());
    for (int64_t q = 1; q <= FusedMaxQueries(RowDType::kF32) + 3; ++q) {
      SCOPED_TRACE(absl::StrCat(RowDTypeName(dtype), ", ", q, " queries, fused kernel: ",
                                UsesFusedKernel(dtype, q) ? "yes" : "no"));
      const Eigen::MatrixXf queries = Eigen::MatrixXf::Random(kWidth, q);
      Eigen::MatrixXf out(kCount, q);
      ScoreRows(stored.data(), kCount, kWidth, dtype, queries, out);
      const Eigen::MatrixXd exact = rounded.cast<double>() * queries.cast<double>();
      const Eigen::MatrixXd scale =
          rounded.cast<double>().cwiseAbs() * queries.cast<double>().cwiseAbs();
      EXPECT_LE(((out.cast<double>() - exact).cwiseAbs().array() -
                 2 * kWidth * std::ldexp(1.0, -24) * scale.array())
                    .maxCoeff(),
                0.0);
    }
  }
}

// QueryTopRows over columns offered block by block in row order (as a scan offers them), with
// NaN, repeated scores and fewer candidates than k: the k largest and the k smallest finite
// scores, ties to the lower row, exactly as a full sort ranks them.
TEST(ScanRanking, QueryTopRowsKeepsWhatAFullSortRanksFirst) {
  constexpr int64_t kScores = 20000, kBlock = 1000;
  std::vector<float> scores(kScores);
  for (int64_t i = 0; i < kScores; ++i) {
    scores[i] = i % 97 == 0 ? std::numeric_limits<float>::quiet_NaN()
                            : static_cast<float>(((i * 7919) % 5003) - 2500);  // repeats
  }
  for (int64_t k : {int64_t{1}, int64_t{10}, int64_t{100}, int64_t{kScores}}) {
    SCOPED_TRACE(absl::StrCat("k = ", k));
    QueryTopRows top(/*queries=*/1, k, /*split_by_sign=*/false);
    for (int64_t b = 0; b < kScores; b += kBlock) top.OfferColumn(0, b, scores.data() + b, kBlock);
    for (const bool largest : {true, false}) {
      std::vector<ScoredRow> expected;
      for (int64_t i = 0; i < kScores; ++i) {
        if (!std::isnan(scores[i])) expected.push_back({i, scores[i]});
      }
      expected = BestRows(std::move(expected), k, largest);
      const std::vector<ScoredRow> got = QueryTopRows::Merge({top}, 0, k, largest);
      ASSERT_EQ(got.size(), expected.size());
      for (size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i].row, expected[i].row)
            << "rank " << i << (largest ? " largest" : " smallest");
        EXPECT_EQ(got[i].score, expected[i].score);
      }
    }
  }
}

TEST(ScanRanking, CancelledScanStopsWithTheCancellationsStatus) {
  TempDir dir;
  std::unique_ptr<GradientIndex> index = WriteIndex(dir.path(), SignedRows(), RowDType::kF32);
  ASSERT_NE(index, nullptr);
  ScanOptions options;
  options.top_k = 5;
  const Cancellation cancelled(absl::InfiniteFuture(), [] { return true; });
  options.cancellation = &cancelled;
  const ScanResult stopped = index->Scan(Queries(1), options);
  EXPECT_EQ(stopped.status.code(), absl::StatusCode::kCancelled) << stopped.status;
  EXPECT_TRUE(stopped.proponents.empty());

  const Cancellation expired(absl::Now() - absl::Seconds(1), {});
  options.cancellation = &expired;
  EXPECT_EQ(index->Scan(Queries(1), options).status.code(), absl::StatusCode::kDeadlineExceeded);

  const Cancellation never;
  options.cancellation = &never;
  const ScanResult full = index->Scan(Queries(1), options);
  EXPECT_TRUE(full.status.ok());
  EXPECT_EQ(full.proponents[0].size(), 5u);
}

}  // namespace
}  // namespace tda
