// Per-source totals of the scan, deleting rows (tombstones) and appending rows, on a real
// trained Fashion-MNIST model and real indexes: an index over 400 training images plus 200 test
// images (two data sources), and the same 400 training images alone, to which the 200 test
// images are appended and compared with the full build.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "absl/strings/str_cat.h"
#include "attribution/attributor.h"
#include "common/atomic_file.h"
#include "data/fashion_mnist.h"
#include "index/gradient_index.h"
#include "index/index_builder.h"
#include "index/index_update.h"
#include "test_support.h"

namespace tda {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::StatusIs;

constexpr int64_t kTrainRows = 400, kTestRows = 200;
constexpr char kTrainSource[] = "fashion-mnist/train", kTestSource[] = "fashion-mnist/test";

Dataset Concat(const Dataset& a, const Dataset& b) {
  Dataset out = a;
  out.name = absl::StrCat(a.name, "+", b.name);
  out.features.insert(out.features.end(), b.features.begin(), b.features.end());
  out.labels.insert(out.labels.end(), b.labels.begin(), b.labels.end());
  out.ids.insert(out.ids.end(), b.ids.begin(), b.ids.end());
  out.sources.insert(out.sources.end(), b.sources.begin(), b.sources.end());
  return out;
}

// A trained model, the full index (train + test rows) and the base index (train rows only).
struct Built {
  testing::TempDir dir;
  std::string full_dir, base_dir;
  const Dataset& test = testing::FashionTest(kTestRows);
};

const Built& BuildOnce() {
  static Built* built = [] {
    auto* b = new Built;
    testing::TinyModelSpec spec;
    spec.train_size = 600;
    spec.epochs = 2;
    TrainRecipe recipe;
    auto model = testing::TrainTinyModel(spec, &recipe);
    EXPECT_TRUE(model->Save(b->dir.file("model"), recipe).ok());
    IndexBuildOptions options;
    options.model_dir = b->dir.file("model");
    options.projection_dim_per_side = 8;
    options.batch_size = 128;
    options.rows_per_shard = 150;  // several shards, the last one partial
    b->full_dir = b->dir.file("full");
    b->base_dir = b->dir.file("base");
    options.out_dir = b->full_dir;
    const Dataset& train = testing::FashionTrain(kTrainRows);
    EXPECT_TRUE(BuildIndex(Concat(train, b->test), kFashionMnistDefaultDir, options).ok());
    options.out_dir = b->base_dir;
    EXPECT_TRUE(BuildIndex(train, kFashionMnistDefaultDir, options).ok());
    return b;
  }();
  return *built;
}

std::string CopyIndex(const std::string& from, const testing::TempDir& to) {
  const std::string dir = to.file("index");
  std::filesystem::copy(from, dir, std::filesystem::copy_options::recursive);
  return dir;
}

const std::vector<Query> kQueries = {{"fashion-mnist/test/500", {}, -1, {}},
                                     {"fashion-mnist/test/501", {}, -1, {}},
                                     {"fashion-mnist/test/502", {}, 2, {}}};

std::vector<QueryResult> Attribute(const std::string& dir, Method method = Method::kEkfac) {
  auto attributor = Attributor::Open(dir);
  EXPECT_TRUE(attributor.ok()) << attributor.status();
  AttributeOptions options;
  options.top_k = 10;
  options.method = method;
  options.return_scores = true;
  auto results = (*attributor)->Attribute(kQueries, options);
  EXPECT_TRUE(results.ok()) << results.status();
  return *results;
}

// Sums the scores of the rows of `source` (skipping NaN, i.e. deleted rows), in double.
double SumOfSource(const GradientIndex& index, const std::vector<float>& scores,
                   const std::string& source, int64_t* count) {
  double sum = 0;
  *count = 0;
  for (int64_t r = 0; r < index.rows(); ++r) {
    if (index.sample(r).source != source || std::isnan(scores[r])) continue;
    sum += scores[r];
    ++*count;
  }
  return sum;
}

TEST(IndexUpdate, SourceTotalsSumToTheFullScoreVector) {
  const Built& b = BuildOnce();
  auto index = GradientIndex::Open(b.full_dir);
  TDA_ASSERT_OK(index);
  ASSERT_EQ((*index)->sources(), (std::vector<std::string>{kTrainSource, kTestSource}));
  for (const QueryResult& r : Attribute(b.full_dir)) {
    SCOPED_TRACE(r.query_id);
    ASSERT_EQ(r.source_totals.size(), 2u);
    double total = 0, scale = 0, totals = 0;
    for (float s : r.scores) total += s, scale += std::abs(s);
    for (const SourceTotal& t : r.source_totals) {
      int64_t count = 0;
      const double expected = SumOfSource(**index, r.scores, t.source, &count);
      EXPECT_EQ(t.count, count) << t.source;
      EXPECT_NEAR(t.sum, expected, 1e-9 * scale) << t.source;
      EXPECT_NEAR(t.mean(), expected / count, 1e-9 * scale / count) << t.source;
      totals += t.sum;
    }
    EXPECT_EQ(r.source_totals[0].count, kTrainRows);
    EXPECT_EQ(r.source_totals[1].count, kTestRows);
    EXPECT_NEAR(totals, total, 1e-9 * scale);
    EXPECT_GT(std::abs(r.source_totals[0].sum), 1e-6 * scale);  // not trivially zero
  }
}

TEST(IndexUpdate, DeletedRowsVanishAndOtherScoresStayBitForBit) {
  const Built& b = BuildOnce();
  testing::TempDir tmp;
  const std::string dir = CopyIndex(b.full_dir, tmp);
  const std::vector<QueryResult> before = Attribute(dir);
  // Delete the query's three strongest proponents, its strongest opponent and a test row.
  std::set<std::string> deleted = {before[0].proponents[0].id, before[0].proponents[1].id,
                                   before[0].proponents[2].id, before[0].opponents[0].id,
                                   "fashion-mnist/test/7"};
  TDA_ASSERT_OK(DeleteFromIndex(dir, {before[0].proponents[0].id, before[0].proponents[1].id}));
  TDA_ASSERT_OK(DeleteFromIndex(
      dir, {before[0].proponents[2].id, before[0].opponents[0].id, "fashion-mnist/test/7"}));
  EXPECT_THAT(DeleteFromIndex(dir, {"fashion-mnist/train/59999"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no sample with that id")));

  auto index = GradientIndex::Open(dir);
  TDA_ASSERT_OK(index);
  EXPECT_EQ((*index)->deleted_rows(), 5);
  EXPECT_EQ((*index)->manifest().format_version, 2);
  EXPECT_EQ((*index)->manifest().generation, 2);
  EXPECT_EQ((*index)->manifest().tombstones.file, "tombstones-00002.txt");
  EXPECT_FALSE(std::filesystem::exists(dir + "/tombstones-00001.txt"));  // replaced, removed
  const std::vector<QueryResult> after = Attribute(dir);
  for (size_t q = 0; q < after.size(); ++q) {
    SCOPED_TRACE(after[q].query_id);
    for (const auto* hits : {&after[q].proponents, &after[q].opponents}) {
      ASSERT_EQ(hits->size(), 10u);
      for (const Hit& hit : *hits) EXPECT_EQ(deleted.count(hit.id), 0u) << hit.id;
    }
    for (int64_t r = 0; r < (*index)->rows(); ++r) {
      if (deleted.count((*index)->sample(r).id)) {
        EXPECT_TRUE(std::isnan(after[q].scores[r])) << r;
      } else {
        ASSERT_EQ(after[q].scores[r], before[q].scores[r]) << "row " << r;  // bit for bit
      }
    }
    int64_t count = 0, deleted_train = 0;
    for (const std::string& id : deleted) {
      deleted_train += (*index)->sample((*index)->FindRow(id)).source == kTrainSource;
    }
    EXPECT_EQ(after[q].source_totals[0].count, kTrainRows - deleted_train);
    EXPECT_EQ(after[q].source_totals[1].count, kTestRows - (5 - deleted_train));
    double scale = 0;
    for (float s : before[q].scores) scale += std::abs(s);
    EXPECT_NEAR(after[q].source_totals[0].sum,
                SumOfSource(**index, after[q].scores, kTrainSource, &count), 1e-9 * scale);
  }
  // The next best rows moved up: the old 4th proponent is now the first.
  EXPECT_EQ(after[0].proponents[0].id, before[0].proponents[3].id);
}

TEST(IndexUpdate, DamagedOrMissingTombstonesAreRefusedAndAKilledDeleteChangesNothing) {
  const Built& b = BuildOnce();
  testing::TempDir tmp;
  const std::string dir = CopyIndex(b.full_dir, tmp);
  // A delete killed before its manifest: the new tombstone file exists, the manifest does not
  // list it, so the index is unchanged.
  TDA_ASSERT_OK(WriteFileAtomically(dir + "/tombstones-00001.txt", "0\tfashion-mnist/train/0\n"));
  {
    auto index = GradientIndex::Open(dir);
    TDA_ASSERT_OK(index);
    EXPECT_EQ((*index)->deleted_rows(), 0);
  }
  TDA_ASSERT_OK(DeleteFromIndex(dir, {"fashion-mnist/train/3", "fashion-mnist/train/9"}));
  const std::string path = dir + "/tombstones-00001.txt";
  std::string good;
  TDA_ASSERT_OK(ReadFile(path, &good));
  ASSERT_EQ(good, "3\tfashion-mnist/train/3\n9\tfashion-mnist/train/9\n");
  auto write = [&](const std::string& text) { std::ofstream(path, std::ios::trunc) << text; };

  write("3\tfashion-mnist/train/3\n8\tfashion-mnist/train/9\n");  // one byte changed
  EXPECT_THAT(GradientIndex::Open(dir), StatusIs(absl::StatusCode::kDataLoss,
                                                 AllOf(HasSubstr("tombstones-00001.txt"),
                                                       HasSubstr("checksum"))));
  // Same size, checked without checksums: the parser still refuses a row/id mismatch.
  EXPECT_THAT(GradientIndex::Open(dir, GradientIndex::Verify::kSizes),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("row 8 is 'fashion-mnist/train/8'")));
  write(good.substr(0, good.size() - 5));
  EXPECT_THAT(GradientIndex::Open(dir, GradientIndex::Verify::kSizes),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("tombstones-00001.txt"), HasSubstr("truncated"))));
  std::filesystem::remove(path);
  EXPECT_THAT(GradientIndex::Open(dir), StatusIs(absl::StatusCode::kDataLoss,
                                                 AllOf(HasSubstr("tombstones-00001.txt"),
                                                       HasSubstr("missing"))));
  EXPECT_THAT(VerifyIndex(dir), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("tombstones")));
}

TEST(IndexUpdate, AppendedRowsEqualAFullBuildsRows) {
  const Built& b = BuildOnce();
  testing::TempDir tmp;
  const std::string dir = CopyIndex(b.base_dir, tmp);
  TDA_ASSERT_OK(AppendToIndex(dir, b.test, /*batch_size=*/64));
  EXPECT_THAT(AppendToIndex(dir, b.test.Select({5})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("already holds it")));

  auto appended = GradientIndex::Open(dir);
  auto full = GradientIndex::Open(b.full_dir);
  TDA_ASSERT_OK(appended);
  TDA_ASSERT_OK(full);
  const GradientIndex& a = **appended;
  const GradientIndex& f = **full;
  ASSERT_EQ(a.rows(), kTrainRows + kTestRows);
  EXPECT_EQ(a.manifest().generation, 1);
  EXPECT_EQ(a.manifest().format_version, 1);  // nothing deleted: old readers can read it
  EXPECT_EQ(a.manifest().samples.file, "samples-00001.tsv");
  EXPECT_FALSE(std::filesystem::exists(dir + "/samples.tsv"));
  // The factors are kept as fitted on the 400 training rows; the full build fitted on 600.
  auto base = GradientIndex::Open(b.base_dir);
  TDA_ASSERT_OK(base);
  EXPECT_EQ(a.manifest().factor_examples, (*base)->manifest().factor_examples);
  EXPECT_EQ(a.manifest().factors.xxh3, (*base)->manifest().factors.xxh3);
  EXPECT_EQ(a.sources(), f.sources());
  std::vector<float> row_a(static_cast<size_t>(a.dim())), row_f(row_a.size());
  double worst = 0;
  for (int64_t r = 0; r < a.rows(); ++r) {
    ASSERT_EQ(a.sample(r).id, f.sample(r).id);
    ASSERT_EQ(a.sample(r).label, f.sample(r).label);
    ASSERT_TRUE(a.CopyRow(r, row_a.data()));
    ASSERT_TRUE(f.CopyRow(r, row_f.data()));
    double diff = 0, norm = 0;
    for (size_t j = 0; j < row_a.size(); ++j) {
      diff = std::max(diff, static_cast<double>(std::abs(row_a[j] - row_f[j])));
      norm = std::max(norm, static_cast<double>(std::abs(row_f[j])));
    }
    worst = std::max(worst, diff / std::max(norm, 1e-30));
  }
  EXPECT_LT(worst, 1e-5) << "appended rows differ from the full build's";
  // Scored the same: gradient-dot needs no factors, so the scores match the full build's.
  const std::vector<QueryResult> ra = Attribute(dir, Method::kGradientDot);
  const std::vector<QueryResult> rf = Attribute(b.full_dir, Method::kGradientDot);
  for (size_t q = 0; q < ra.size(); ++q) {
    double scale = 0;
    for (float s : rf[q].scores) scale = std::max(scale, static_cast<double>(std::abs(s)));
    for (int64_t r = 0; r < a.rows(); ++r) {
      ASSERT_NEAR(ra[q].scores[r], rf[q].scores[r], 1e-5 * scale) << "row " << r;
    }
    EXPECT_EQ(ra[q].source_totals.size(), 2u);
  }
}

}  // namespace
}  // namespace tda
