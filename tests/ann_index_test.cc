// Approximate top-k (index/ann_index.h, attribution/approximate_scan.h) on a real index: a
// model trained on 2000 Fashion-MNIST images, their projected gradients (8 per side), EK-FAC
// queries of real test images. Every returned score must be the exact score of its row, recall
// against the exact scan must be high with generous search parameters, and a missing, stale
// or damaged ANN must be refused, never used; nothing is overwritten without --overwrite.
#include "index/ann_index.h"

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "attribution/attributor.h"
#include "data/fashion_mnist.h"
#include "index/index_builder.h"
#include "index/index_update.h"
#include "test_support.h"

namespace tda {
namespace {

using ::testing::HasSubstr;
using testing::StatusIs;

constexpr int64_t kRows = 2000, kTopK = 10;

struct Built {
  testing::TempDir dir;
  std::string index_dir;
};

// The trained model and its index, built once per process (no ANN in it).
const Built& BuildOnce() {
  static Built* built = [] {
    auto* b = new Built;
    testing::TinyModelSpec spec;
    spec.train_size = kRows;
    spec.epochs = 2;
    TrainRecipe recipe;
    auto model = testing::TrainTinyModel(spec, &recipe);
    EXPECT_TRUE(model->Save(b->dir.file("model"), recipe).ok());
    IndexBuildOptions options;
    options.model_dir = b->dir.file("model");
    options.projection_dim_per_side = 8;
    options.batch_size = 256;
    options.out_dir = b->index_dir = b->dir.file("index");
    EXPECT_TRUE(BuildIndex(testing::FashionTrain(kRows), kFashionMnistDefaultDir, options).ok());
    return b;
  }();
  return *built;
}

// A private copy of the index, to build an ANN into or damage.
std::string CopyIndex(const testing::TempDir& to) {
  const std::string dir = to.file("index");
  std::filesystem::copy(BuildOnce().index_dir, dir, std::filesystem::copy_options::recursive);
  return dir;
}

std::vector<Query> TestQueries(int64_t n) {
  std::vector<Query> queries;
  for (int64_t i = 0; i < n; ++i)
    queries.push_back({absl::StrCat("fashion-mnist/test/", i), {}, -1, {}});
  return queries;
}

AttributeOptions Approximate(int64_t nprobe = 0) {
  AttributeOptions options;
  options.top_k = kTopK;
  options.approximate.enabled = true;
  options.approximate.nprobe = nprobe;
  return options;
}

absl::Status BuildAnn(const std::string& dir, AnnKind kind, bool overwrite) {
  absl::StatusOr<std::unique_ptr<GradientIndex>> index = GradientIndex::Open(dir);
  if (!index.ok()) return index.status();
  AnnParameters parameters;
  parameters.kind = kind;
  return AnnIndex::Build(**index, parameters, overwrite).status();
}

TEST(AnnIndex, EveryKindReturnsExactlyRescoredHitsWithHighRecall) {
  testing::TempDir tmp;
  const std::string dir = CopyIndex(tmp);
  const std::vector<Query> queries = TestQueries(20);
  auto exact_attributor = Attributor::Open(dir);
  TDA_ASSERT_OK(exact_attributor);
  AttributeOptions exact_options;
  exact_options.top_k = kTopK;
  exact_options.return_scores = true;
  auto exact = (*exact_attributor)->Attribute(queries, exact_options);
  TDA_ASSERT_OK(exact);
  for (AnnKind kind : {AnnKind::kIvfFlat, AnnKind::kHnsw, AnnKind::kIvfPq}) {
    SCOPED_TRACE(AnnKindName(kind));
    TDA_ASSERT_OK(BuildAnn(dir, kind, /*overwrite=*/true));
    auto attributor = Attributor::Open(dir);  // a fresh one: the ANN is opened on first use
    TDA_ASSERT_OK(attributor);
    auto approximate = (*attributor)->Attribute(queries, Approximate(/*nprobe=*/16));
    TDA_ASSERT_OK(approximate);
    double recall = 0;
    for (size_t q = 0; q < queries.size(); ++q) {
      const QueryResult& a = (*approximate)[q];
      const QueryResult& e = (*exact)[q];
      EXPECT_TRUE(a.source_totals.empty());
      ASSERT_EQ(a.proponents.size(), static_cast<size_t>(kTopK));
      ASSERT_EQ(a.opponents.size(), static_cast<size_t>(kTopK));
      float scale = 0;
      for (float s : e.scores) scale = std::max(scale, std::abs(s));
      for (const std::vector<Hit>* hits : {&a.proponents, &a.opponents}) {
        for (size_t h = 0; h < hits->size(); ++h) {
          const Hit& hit = (*hits)[h];
          // The exact score of that row, not the ANN's estimate.
          EXPECT_NEAR(hit.score, e.scores[hit.row], 1e-6 * scale) << "row " << hit.row;
          if (h > 0) {
            EXPECT_TRUE(hits == &a.proponents ? hit.score <= (*hits)[h - 1].score
                                              : hit.score >= (*hits)[h - 1].score);
          }
        }
      }
      EXPECT_GT(a.proponents.back().score, 0);
      EXPECT_LT(a.opponents.back().score, 0);
      recall += (testing::HitRecall(a.proponents, e.proponents) +
                 testing::HitRecall(a.opponents, e.opponents)) /
                2;
    }
    recall /= static_cast<double>(queries.size());
    std::cout << "[ ANN      ] " << AnnKindName(kind) << ": recall@" << kTopK
              << " against the exact scan " << recall << " (20 EK-FAC queries, " << kRows
              << " rows)\n";
    EXPECT_GE(recall, 0.8);
  }
}

// The whole Fashion-MNIST training set, as the demo indexes it (784-128-10 MLP, 32 per side:
// 60,000 x 1344 f32 rows), with an IVF-Flat of 256 lists: recall@10 and @100 of nprobe 16
// against the exact scan, printed, for 50 EK-FAC test-image queries (13 s on one thread).
TEST(AnnIndex, RecallOnTheWhole60kFashionMnistIndexIsPrinted) {
  constexpr int64_t kAll = 60000;
  testing::TempDir tmp;
  testing::TinyModelSpec spec;
  spec.hidden = {128};
  spec.train_size = kAll;
  spec.epochs = 1;
  TrainRecipe recipe;
  auto model = testing::TrainTinyModel(spec, &recipe);
  TDA_ASSERT_OK(model->Save(tmp.file("model"), recipe));
  IndexBuildOptions options;
  options.model_dir = tmp.file("model");
  options.out_dir = tmp.file("index");
  options.projection_dim_per_side = 32;
  TDA_ASSERT_OK(BuildIndex(testing::FashionTrain(kAll), kFashionMnistDefaultDir, options));
  {
    absl::StatusOr<std::unique_ptr<GradientIndex>> index = GradientIndex::Open(options.out_dir);
    TDA_ASSERT_OK(index);
    ASSERT_EQ((*index)->rows(), kAll);
    AnnParameters parameters;
    parameters.kind = AnnKind::kIvfFlat;
    parameters.nlist = 256;
    TDA_ASSERT_OK(AnnIndex::Build(**index, parameters, /*overwrite=*/false).status());
  }
  auto attributor = Attributor::Open(options.out_dir);
  TDA_ASSERT_OK(attributor);
  const std::vector<Query> queries = TestQueries(50);
  for (int64_t top_k : {10, 100}) {
    AttributeOptions exact_options;
    exact_options.top_k = top_k;
    auto exact = (*attributor)->Attribute(queries, exact_options);
    TDA_ASSERT_OK(exact);
    AttributeOptions approximate_options = Approximate(/*nprobe=*/16);
    approximate_options.top_k = top_k;
    auto approximate = (*attributor)->Attribute(queries, approximate_options);
    TDA_ASSERT_OK(approximate);
    double recall = 0;
    for (size_t q = 0; q < queries.size(); ++q) {
      recall += (testing::HitRecall((*approximate)[q].proponents, (*exact)[q].proponents) +
                 testing::HitRecall((*approximate)[q].opponents, (*exact)[q].opponents)) /
                2;
    }
    recall /= static_cast<double>(queries.size());
    std::cout << "[ ANN      ] ivf-flat (nlist 256, nprobe 16) on 60,000 x 1344 rows: recall@"
              << top_k << " against the exact scan " << recall << " (50 EK-FAC queries)\n";
    EXPECT_GE(recall, 0.75);
  }
}

TEST(AnnIndex, MissingStaleOrDamagedAnnIsRefusedAndNothingIsOverwritten) {
  testing::TempDir tmp;
  const std::string dir = CopyIndex(tmp);
  const std::vector<Query> queries = TestQueries(2);
  {
    auto attributor = Attributor::Open(dir);
    TDA_ASSERT_OK(attributor);
    EXPECT_THAT((*attributor)->Attribute(queries, Approximate()),
                StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("tda index ann")));
    AttributeOptions with_scores = Approximate();
    with_scores.return_scores = true;
    EXPECT_THAT((*attributor)->Attribute(queries, with_scores),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("return_scores")));
  }
  TDA_ASSERT_OK(BuildAnn(dir, AnnKind::kIvfFlat, /*overwrite=*/false));
  const std::string ann_path = dir + "/" + kAnnFile;
  const std::string built = testing::ReadText(ann_path);
  const std::string sidecar = testing::ReadText(dir + "/" + kAnnSidecarFile);
  // Without --overwrite nothing is replaced, not even by a different kind.
  EXPECT_THAT(BuildAnn(dir, AnnKind::kHnsw, /*overwrite=*/false),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("--overwrite")));
  EXPECT_EQ(testing::ReadText(ann_path), built);
  EXPECT_EQ(testing::ReadText(dir + "/" + kAnnSidecarFile), sidecar);

  // One flipped byte in the middle of the inverted lists.
  std::string damaged = built;
  damaged[damaged.size() / 2] ^= 0x10;
  testing::WriteText(ann_path, damaged);
  {
    auto attributor = Attributor::Open(dir);
    TDA_ASSERT_OK(attributor);
    EXPECT_THAT((*attributor)->Attribute(queries, Approximate()),
                StatusIs(absl::StatusCode::kDataLoss, HasSubstr("damaged")));
  }
  testing::WriteText(ann_path, built);
  {
    auto attributor = Attributor::Open(dir);
    TDA_ASSERT_OK(attributor);
    TDA_ASSERT_OK((*attributor)->Attribute(queries, Approximate()));
  }
  // Rows deleted after the ANN was built: the ANN no longer matches the manifest.
  TDA_ASSERT_OK(DeleteFromIndex(dir, {"fashion-mnist/train/7"}));
  auto attributor = Attributor::Open(dir);
  TDA_ASSERT_OK(attributor);
  EXPECT_THAT((*attributor)->Attribute(queries, Approximate()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("stale")));
  // Rebuilt with --overwrite it serves again, and the deleted row is never returned.
  TDA_ASSERT_OK(BuildAnn(dir, AnnKind::kIvfFlat, /*overwrite=*/true));
  auto reopened = Attributor::Open(dir);
  TDA_ASSERT_OK(reopened);
  auto results = (*reopened)->Attribute(queries, Approximate());
  TDA_ASSERT_OK(results);
  for (const QueryResult& r : *results) {
    for (const Hit& h : r.proponents) EXPECT_NE(h.id, "fashion-mnist/train/7");
    for (const Hit& h : r.opponents) EXPECT_NE(h.id, "fashion-mnist/train/7");
  }
}

}  // namespace
}  // namespace tda
