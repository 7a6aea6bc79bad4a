// Row storage dtypes of the gradient index (docs/index_format.md, "dtype"): f32, bf16 and f16
// round-trip within their rounding, damaged bf16 shards are refused by name, VerifyIndex reports
// every file, and on real Fashion-MNIST gradients a bf16 index ranks the same top-k as f32 up to
// ties within bf16 rounding.
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "data/fashion_mnist.h"
#include "grad/projection.h"
#include "index/block_scorer.h"
#include "index/gradient_index.h"
#include "index/index_builder.h"
#include "index/index_writer.h"
#include "index/row_dtype.h"
#include "model/model.h"
#include "test_support.h"

namespace tda {
namespace {

using ::tda::testing::StatusIs;
using ::tda::testing::TempDir;
using ::testing::AllOf;
using ::testing::HasSubstr;
using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Writes an index of `rows` (all shards of `rows_per_shard`) with placeholder caller files.
void WriteIndex(const std::string& dir, const RowMatrix& rows, int64_t rows_per_shard,
                RowDType dtype) {
  auto writer = IndexWriter::Create(dir, rows.cols(), rows_per_shard, dtype);
  TDA_ASSERT_OK(writer);
  std::vector<SampleRecord> samples;
  for (int64_t i = 0; i < rows.rows(); ++i) samples.push_back({absl::StrCat("s/", i), "s", 0, ""});
  TDA_ASSERT_OK((*writer)->AppendRows(rows.data(), samples));
  ASSERT_TRUE(MakeDirectories(dir + "/model").ok());
  for (const char* f : {"factors.safetensors", "model/model.safetensors", "model/config.json"}) {
    ASSERT_TRUE(WriteFileAtomically(dir + "/" + f, "{}").ok());
  }
  Manifest m;
  m.model_fingerprint = "0123456789abcdef";
  m.layer_dims = {rows.cols()};
  TDA_ASSERT_OK((*writer)->Finish(m));
}

// What `dtype` stores for x, back in f32.
float Rounded(float x, RowDType dtype) {
  float out;
  char stored[4];
  ConvertFromF32(&x, 1, dtype, stored);
  ConvertToF32(stored, 1, dtype, &out);
  return out;
}

TEST(IndexDtype, ConversionsRoundToNearestEven) {
  // Halfway between 1 and the next value: ties go to the even significand.
  EXPECT_EQ(Rounded(1.0f + std::ldexp(1.0f, -8), RowDType::kBF16), 1.0f);
  EXPECT_EQ(Rounded(1.0f + 3 * std::ldexp(1.0f, -8), RowDType::kBF16), 1.0f + std::ldexp(1.0f, -6));
  EXPECT_EQ(Rounded(1.0f + std::ldexp(1.0f, -11), RowDType::kF16), 1.0f);
  EXPECT_EQ(Rounded(1.0f + 3 * std::ldexp(1.0f, -11), RowDType::kF16), 1.0f + std::ldexp(1.0f, -9));
  // Just above halfway rounds up.
  EXPECT_EQ(Rounded(1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20), RowDType::kBF16),
            1.0f + std::ldexp(1.0f, -7));
  EXPECT_EQ(Rounded(-2.5f, RowDType::kBF16), -2.5f);
  EXPECT_EQ(Rounded(1e30f, RowDType::kF16), INFINITY);  // beyond f16's 65504
  EXPECT_TRUE(std::isnan(Rounded(NAN, RowDType::kBF16)));
  EXPECT_TRUE(std::isnan(Rounded(NAN, RowDType::kF16)));
  // Bit patterns (little-endian in the shard files): 1.0 is 0x3f80 in bf16, 0x3c00 in f16.
  uint16_t bits;
  float one = 1.0f;
  ConvertFromF32(&one, 1, RowDType::kBF16, &bits);
  EXPECT_EQ(bits, 0x3f80);
  ConvertFromF32(&one, 1, RowDType::kF16, &bits);
  EXPECT_EQ(bits, 0x3c00);
  EXPECT_THAT(ParseRowDType("f64"), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("f64")));
}

TEST(IndexDtype, EveryDtypeRoundTripsWithinItsRounding) {
  const int64_t n = 700, dim = 24;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  RowMatrix rows(n, dim);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < dim; ++j) rows(i, j) = normal(rng);
  }
  rows(0, 0) = 0.0f;
  rows(0, 1) = -0.0f;
  rows(0, 2) = 1e-3f;
  // Rounding to nearest moves x by at most half an ulp: relative 2^-8 for bf16 (8 significant
  // bits), 2^-11 for f16 (11), plus for f16 half its subnormal spacing 2^-24; 0 for f32.
  const struct {
    RowDType dtype;
    const char* ext;
    double relative, absolute;
  } cases[] = {{RowDType::kF32, ".f32", 0.0, 0.0},
               {RowDType::kBF16, ".bf16", std::ldexp(1.0, -8), 0.0},
               {RowDType::kF16, ".f16", std::ldexp(1.0, -11), std::ldexp(1.0, -25)}};
  for (const auto& c : cases) {
    SCOPED_TRACE(RowDTypeName(c.dtype));
    TempDir dir;
    WriteIndex(dir.path(), rows, /*rows_per_shard=*/300, c.dtype);
    const std::string shard1 = absl::StrCat("grads-00001", c.ext);
    ASSERT_EQ(testing::ReadText(dir.file(shard1)).size(), 300u * dim * RowDTypeBytes(c.dtype));
    auto index = GradientIndex::Open(dir.path());
    TDA_ASSERT_OK(index);
    const GradientIndex& idx = **index;
    EXPECT_EQ(idx.dtype(), c.dtype);
    EXPECT_EQ(idx.manifest().dtype, RowDTypeName(c.dtype));
    ASSERT_EQ(idx.manifest().shards.size(), 3u);
    EXPECT_EQ(idx.manifest().shards[1].file.file, shard1);
    RowMatrix stored(n, dim);
    for (int64_t i = 0; i < n; ++i) ASSERT_TRUE(idx.CopyRow(i, stored.row(i).data()));
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < dim; ++j) {
        ASSERT_EQ(stored(i, j), Rounded(rows(i, j), c.dtype)) << i << "," << j;
        ASSERT_LE(std::abs(stored(i, j) - rows(i, j)),
                  c.relative * std::abs(rows(i, j)) + c.absolute);
      }
    }
    EXPECT_TRUE(std::signbit(stored(0, 1)));
    // Scores are f32 products of the stored rows, whatever the dtype.
    Eigen::MatrixXf queries = Eigen::MatrixXf::Random(dim, 3);
    Eigen::MatrixXf scores = idx.Score(queries);
    Eigen::MatrixXd expected = stored.cast<double>() * queries.cast<double>();
    double scale = stored.cast<double>().rowwise().norm().maxCoeff() *
                   queries.cast<double>().colwise().norm().maxCoeff();
    EXPECT_LT((scores.cast<double>() - expected).cwiseAbs().maxCoeff(), 1e-5 * scale);
  }
}

TEST(IndexDtype, CorruptBf16ShardIsRefusedNamingTheFile) {
  TempDir dir;
  RowMatrix rows = RowMatrix::Random(100, 8);
  WriteIndex(dir.path(), rows, 40, RowDType::kBF16);
  TDA_ASSERT_OK(VerifyIndex(dir.path()));
  std::string shard = testing::ReadText(dir.file("grads-00001.bf16"));
  shard[33] ^= 0x04;
  std::ofstream(dir.file("grads-00001.bf16"), std::ios::binary | std::ios::trunc) << shard;
  EXPECT_THAT(GradientIndex::Open(dir.path()),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("index shard grads-00001.bf16"), HasSubstr("checksum"))));
  std::vector<FileCheck> checks;
  EXPECT_THAT(VerifyIndex(dir.path(), [&](const FileCheck& c) { checks.push_back(c); }),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("grads-00001.bf16")));
  ASSERT_EQ(checks.size(), 3u + 4u);  // every file gets a result, not just the first bad one
  for (const FileCheck& c : checks) {
    EXPECT_EQ(c.status.ok(), c.file != "grads-00001.bf16") << c.file;
  }

  std::filesystem::resize_file(dir.file("grads-00002.bf16"), 20 * 8 * 2 - 1);
  EXPECT_THAT(GradientIndex::Open(dir.path(), GradientIndex::Verify::kSizes),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr("index shard grads-00002.bf16: 319 bytes, manifest says 320")));
  std::filesystem::remove(dir.file("manifest.json"));
  EXPECT_THAT(VerifyIndex(dir.path()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no index")));
}

// Top-k row ids of one score column (largest or smallest), ties to the lower row.
std::vector<int64_t> TopK(const Eigen::VectorXf& scores, int64_t k, bool largest) {
  std::vector<int64_t> order(static_cast<size_t>(scores.size()));
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int64_t a, int64_t b) {
    if (scores[a] != scores[b]) return largest ? scores[a] > scores[b] : scores[a] < scores[b];
    return a < b;
  });
  order.resize(static_cast<size_t>(k));
  return order;
}

TEST(IndexDtype, Bf16RanksTheSameTopKAsF32OnFashionMnistGradients) {
  constexpr int64_t kTrain = 1000, kQueries = 8, kTop = 10;
  TempDir dir;
  testing::TinyModelSpec spec;
  spec.train_size = kTrain;
  TrainRecipe recipe;
  std::unique_ptr<Model> model = testing::TrainTinyModel(spec, &recipe);
  TDA_ASSERT_OK(model->Save(dir.file("model"), recipe));
  IndexBuildOptions options;
  options.model_dir = dir.file("model");
  options.projection_dim_per_side = 8;
  options.projection_seed = 3;
  options.batch_size = 250;
  options.rows_per_shard = 300;
  options.out_dir = dir.file("f32");
  TDA_ASSERT_OK(BuildIndex(testing::FashionTrain(kTrain), kFashionMnistDefaultDir, options));
  options.dtype = RowDType::kBF16;
  options.out_dir = dir.file("bf16");
  TDA_ASSERT_OK(BuildIndex(testing::FashionTrain(kTrain), kFashionMnistDefaultDir, options));
  auto f32 = GradientIndex::Open(dir.file("f32"));
  auto bf16 = GradientIndex::Open(dir.file("bf16"));
  TDA_ASSERT_OK(f32);
  TDA_ASSERT_OK(bf16);
  ASSERT_EQ((*bf16)->dtype(), RowDType::kBF16);
  ASSERT_EQ((*bf16)->dim(), (*f32)->dim());
  const int64_t dim = (*f32)->dim();

  // Queries: projected gradients of real test images, in the index's projection.
  const Dataset& test = testing::FashionTest(kQueries);
  const Projection projection(model->layout(), options.projection_dim_per_side,
                              options.projection_seed);
  auto capture = model->Capture(test.Rows(0, kQueries));
  TDA_ASSERT_OK(capture);
  Eigen::MatrixXf queries = projection.ProjectCapture(*capture).transpose();  // dim x Q
  ASSERT_EQ(queries.rows(), dim);

  Eigen::MatrixXf s32 = (*f32)->Score(queries), s16 = (*bf16)->Score(queries);
  RowMatrix rows(kTrain, dim);
  for (int64_t i = 0; i < kTrain; ++i) ASSERT_TRUE((*f32)->CopyRow(i, rows.row(i).data()));
  // Tie tolerance. bf16 keeps 8 significant bits, so rounding to nearest moves each stored
  // element by at most half an ulp, |g~ - g| <= 2^-8 |g| (the bf16 relative precision). A score
  // s_i = sum_j g_ij q_j therefore moves by at most 2^-8 S_i, with S_i = sum_j |g_ij q_j| the
  // row's score scale; both scores are also f32 sums, each off by at most ~dim * 2^-24 S_i, so
  // tol_i = (2^-8 + dim * 2^-23) S_i bounds |s~_i - s_i| (checked below). Two rows can trade
  // places only if their f32 scores are within tol_i + tol_j of each other: that is a tie
  // "within bf16 rounding", and the only difference between the two top-k lists we accept.
  const Eigen::MatrixXd tol =
      (std::ldexp(1.0, -8) + dim * std::ldexp(1.0, -23)) *
      (rows.cast<double>().cwiseAbs() * queries.cast<double>().cwiseAbs());
  EXPECT_LE(((s16 - s32).cast<double>().cwiseAbs().array() - tol.array()).maxCoeff(), 0.0)
      << "a bf16 score moved further than bf16 rounding allows";
  // The kQueries = 8 queries take the fused bf16 kernel (index/block_scorer.h); the same
  // queries in a batch of 16 take the convert-then-GEMM path. Both are f32 products of the same
  // stored elements, so they differ only by f32 summation order (dim * 2^-23 S_i at most).
  ASSERT_TRUE(UsesFusedKernel(RowDType::kBF16, kQueries));
  Eigen::MatrixXf doubled(dim, 2 * kQueries);
  doubled << queries, queries;
  ASSERT_FALSE(UsesFusedKernel(RowDType::kBF16, doubled.cols()));
  const Eigen::MatrixXf gemm = (*bf16)->Score(doubled).leftCols(kQueries);
  const Eigen::MatrixXd scale = rows.cast<double>().cwiseAbs() * queries.cast<double>().cwiseAbs();
  EXPECT_LE(((gemm - s16).cast<double>().cwiseAbs().array() -
             (1 + std::ldexp(1.0, -7)) * dim * std::ldexp(1.0, -23) * scale.array())
                .maxCoeff(),
            0.0)
      << "the fused bf16 kernel and the GEMM path disagree beyond f32 rounding";
  // The same for f32 rows: 8 queries fused, 16 through SGEMM tiles (the 16-lane broadcast
  // kernel on AVX-512: another kernel all the same).
  ASSERT_TRUE(UsesFusedKernel(RowDType::kF32, kQueries));
  ASSERT_FALSE(UsesFusedKernel(RowDType::kF32, 1)) << "one f32 query is a GEMV";
  const Eigen::MatrixXf gemm32 = (*f32)->Score(doubled).leftCols(kQueries);
  EXPECT_LE(((gemm32 - s32).cast<double>().cwiseAbs().array() -
             2 * dim * std::ldexp(1.0, -23) * scale.array())
                .maxCoeff(),
            0.0)
      << "the fused f32 kernel and the GEMM path disagree beyond f32 rounding";
  // Scan's top-k (heaps filled in the same pass) is the top-k of the full score vector.
  ScanOptions scan_options;
  scan_options.top_k = kTop;
  const ScanResult scan = (*bf16)->Scan(queries, scan_options);
  for (int64_t q = 0; q < kQueries; ++q) {
    for (bool largest : {true, false}) {
      std::vector<int64_t> ids;
      for (const ScoredRow& hit : largest ? scan.proponents[q] : scan.opponents[q]) {
        ids.push_back(hit.row);
      }
      EXPECT_EQ(ids, TopK(s16.col(q), kTop, largest)) << "query " << q;
    }
  }
  int differing = 0;
  for (int64_t q = 0; q < kQueries; ++q) {
    for (bool largest : {true, false}) {
      SCOPED_TRACE(absl::StrCat("query ", q, largest ? " proponents" : " opponents"));
      std::vector<int64_t> a = TopK(s32.col(q), kTop, largest), b = TopK(s16.col(q), kTop, largest);
      const double kth = s32(a.back(), q);
      double max_tol = 0;
      for (int64_t r : a) max_tol = std::max(max_tol, tol(r, q));
      for (int64_t r : b) max_tol = std::max(max_tol, tol(r, q));
      std::set<int64_t> in_a(a.begin(), a.end()), in_b(b.begin(), b.end());
      for (int64_t r : a) {
        if (in_b.count(r)) continue;
        ++differing;  // dropped from the top-k by bf16: must have been tied with the k-th
        EXPECT_LE(std::abs(s32(r, q) - kth), 2 * max_tol) << "row " << r;
      }
      for (int64_t r : b) {
        if (in_a.count(r)) continue;  // promoted into the top-k by bf16: likewise
        EXPECT_LE(std::abs(s32(r, q) - kth), 2 * max_tol) << "row " << r;
      }
    }
  }
  // Ties are rare: most of the 16 top-10 lists agree exactly.
  EXPECT_LE(differing, 2 * kQueries * kTop / 10);
  std::printf("bf16 vs f32: %d of %lld top-%lld ids differ (all within bf16 ties)\n", differing,
              static_cast<long long>(2 * kQueries * kTop), static_cast<long long>(kTop));
}

}  // namespace
}  // namespace tda
