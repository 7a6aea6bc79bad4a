// The on-disk gradient index (docs/index_format.md): IndexWriter -> GradientIndex round trips,
// and every kind of damage a reader must refuse with the right code and the file's name.
// Rows are random: this proves the storage layer, not the gradients stored in it.
#include <Eigen/Core>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/atomic_file.h"
#include "common/safetensors.h"
#include "index/gradient_index.h"
#include "index/index_writer.h"
#include "index/manifest.h"
#include "random_index.h"
#include "test_support.h"

namespace tda {
namespace {

using ::tda::testing::StatusIs;
using ::tda::testing::TempDir;
using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::Built;
using testing::BuildRandomIndex;
using testing::Descriptive;
using testing::FlipByte;
using testing::Overwrite;
using testing::RowMatrix;
using testing::WriteCallerFiles;

TEST(IndexStorage, RoundTripGivesIdenticalRowsSamplesAndScores) {
  TempDir dir;
  const int64_t n = 10000, dim = 48;
  Built built = BuildRandomIndex(dir.path(), n, dim, /*rows_per_shard=*/4500);
  auto index = GradientIndex::Open(dir.path());
  TDA_ASSERT_OK(index);
  const GradientIndex& idx = **index;
  ASSERT_EQ(idx.rows(), n);
  ASSERT_EQ(idx.dim(), dim);
  ASSERT_EQ(idx.manifest().shards.size(), 3u);
  EXPECT_EQ(idx.manifest().shards[1].file.file, "grads-00001.f32");
  EXPECT_EQ(idx.manifest().shards[2].row_begin, 9000);
  EXPECT_EQ(idx.manifest().dataset, "fashion-mnist/train");
  EXPECT_EQ(idx.manifest().layer_dims, (std::vector<int64_t>{32, 16}));
  EXPECT_EQ(idx.manifest().projection_seed, 42u);
  std::vector<float> row(static_cast<size_t>(dim));
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_TRUE(idx.CopyRow(i, row.data()));
    ASSERT_EQ(std::memcmp(row.data(), built.rows.row(i).data(), dim * sizeof(float)), 0) << i;
    ASSERT_EQ(idx.sample(i).id, built.samples[i].id);
    ASSERT_EQ(idx.sample(i).label, built.samples[i].label);
    ASSERT_EQ(idx.sample(i).preview, built.samples[i].preview);
  }
  EXPECT_FALSE(idx.CopyRow(n, row.data()));
  EXPECT_FALSE(idx.CopyRow(-1, row.data()));
  EXPECT_EQ(idx.FindRow("fashion-mnist/train/4500"), 4500);
  EXPECT_EQ(idx.FindRow("fashion-mnist/test/0"), -1);

  for (int q : {1, 5}) {
    Eigen::MatrixXf queries = Eigen::MatrixXf::Random(dim, q);
    Eigen::MatrixXf scores = idx.Score(queries);
    ASSERT_EQ(scores.rows(), n);
    ASSERT_EQ(scores.cols(), q);
    Eigen::MatrixXd expected = built.rows.cast<double>() * queries.cast<double>();
    double scale = built.rows.cast<double>().rowwise().norm().maxCoeff() *
                   queries.cast<double>().colwise().norm().maxCoeff();
    EXPECT_LT((scores.cast<double>() - expected).cwiseAbs().maxCoeff(), 1e-5 * scale);
    // A second open of the same files scores bit-identically.
    auto again = GradientIndex::Open(dir.path(), GradientIndex::Verify::kSizes);
    TDA_ASSERT_OK(again);
    EXPECT_TRUE((*again)->Score(queries) == scores);
  }
  EXPECT_EQ(idx.Score(Eigen::MatrixXf::Ones(dim + 1, 1)).size(), 0);
}

TEST(IndexStorage, ShardsAreRawLittleEndianRowMajorFloats) {
  TempDir dir;
  Built built = BuildRandomIndex(dir.path(), 10, 6, /*rows_per_shard=*/4);
  std::string shard = testing::ReadText(dir.file("grads-00001.f32"));  // rows 4..7
  ASSERT_EQ(shard.size(), 4u * 6u * sizeof(float));
  EXPECT_EQ(std::memcmp(shard.data(), built.rows.row(4).data(), shard.size()), 0);
  EXPECT_EQ(testing::ReadText(dir.file("grads-00002.f32")).size(), 2u * 6u * sizeof(float));
  EXPECT_FALSE(std::filesystem::exists(dir.file("grads-00003.f32")));
  std::string samples = testing::ReadText(dir.file("samples.tsv"));
  EXPECT_EQ(samples.substr(0, samples.find('\n')),
            absl::StrCat("fashion-mnist/train/0\tfashion-mnist/train\t", built.samples[0].label,
                         "\t", built.samples[0].preview));
}

TEST(IndexStorage, PreviewTabsAndNewlinesAreSanitised) {
  TempDir dir;
  const int64_t dim = 4;
  auto writer = IndexWriter::Create(dir.path(), dim);
  TDA_ASSERT_OK(writer);
  std::vector<float> rows(2 * dim, 1.0f);
  TDA_ASSERT_OK((*writer)->AppendRows(
      rows.data(), {{"fortunes/computers/0", "computers", -1, "line one\n\tline two\r\n"},
                    {"fortunes/computers/1", "computers", -1, ""}}));
  EXPECT_THAT((*writer)->AppendRows(rows.data(), {{"bad\tid", "computers", -1, ""}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bad\tid")));
  WriteCallerFiles(dir.path(), dim);
  Manifest m = Descriptive(dim);
  m.layer_dims = {dim};
  TDA_ASSERT_OK((*writer)->Finish(m));
  auto index = GradientIndex::Open(dir.path());
  TDA_ASSERT_OK(index);
  EXPECT_EQ((*index)->sample(0).preview, "line one  line two  ");
  EXPECT_EQ((*index)->sample(0).label, -1);
  EXPECT_EQ((*index)->sample(1).preview, "");
}

TEST(IndexStorage, ManifestJsonRoundTripsEveryField) {
  Manifest m = Descriptive(30);
  m.rows = 5;
  m.dim = 30;
  m.projection_seed = 0xfedcba9876543210ull;  // above INT64_MAX
  m.shards = {{{"grads-00000.f32", 5 * 30 * 4, "00112233445566ff"}, 0, 5}};
  m.factors = {"factors.safetensors", 123, "0000000000000001"};
  m.samples = {"samples.tsv", 45, "0000000000000002"};
  m.model_weights = {"model/model.safetensors", 678, "0000000000000003"};
  m.model_config = {"model/config.json", 9, "0000000000000004"};
  auto parsed = ManifestFromJson(ManifestToJson(m), "m.json");
  TDA_ASSERT_OK(parsed);
  EXPECT_EQ(ManifestToJson(*parsed), ManifestToJson(m));
  EXPECT_EQ(parsed->projection_seed, m.projection_seed);
  EXPECT_EQ(parsed->shards[0].file.xxh3, "00112233445566ff");
  EXPECT_EQ(parsed->model_config.file, "model/config.json");

  auto broken = [&](const std::string& from, const std::string& to) {
    std::string text = ManifestToJson(m);
    EXPECT_NE(text.find(from), std::string::npos) << from;
    return ManifestFromJson(absl::StrReplaceAll(text, {{from, to}}), "m.json").status();
  };
  EXPECT_THAT(broken("\"rows\": 5", "\"rows\": \"5\""),
              StatusIs(absl::StatusCode::kDataLoss, AllOf(HasSubstr("m.json"), HasSubstr("rows"))));
  EXPECT_THAT(broken("\"dim_per_side\"", "\"dim_per_sid\""),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("projection.dim_per_side")));
  EXPECT_THAT(broken("\"row_end\": 5", "\"row_end\": 4"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("grads-00000.f32")));
  EXPECT_THAT(broken("\"bytes\": 600", "\"bytes\": 601"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("601 bytes, expected 600")));
  EXPECT_THAT(broken("\"rows\": 5", "\"rows\": 6"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("but rows is 6")));
  EXPECT_THAT(broken("20,\n      10", "20,\n      11"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("layer_dims sum to 31")));
  EXPECT_THAT(broken("\"model/config.json\"", "\"../config.json\""),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("relative path")));
  EXPECT_THAT(broken("00112233445566ff", "0011223344"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("16 lowercase hex")));
  EXPECT_THAT(broken("\"dtype\": \"f32\"", "\"dtype\": \"f64\""),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("f64")));
  EXPECT_THAT(ManifestFromJson("[1, 2]", "m.json"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("m.json")));
}

TEST(IndexStorage, TruncatedShardIsRefused) {
  TempDir dir;
  BuildRandomIndex(dir.path(), 100, 8, 40);
  std::filesystem::resize_file(dir.file("grads-00001.f32"), 40 * 8 * 4 - 3);
  for (auto verify : {GradientIndex::Verify::kSizes, GradientIndex::Verify::kFull}) {
    EXPECT_THAT(GradientIndex::Open(dir.path(), verify),
                StatusIs(absl::StatusCode::kDataLoss,
                         AllOf(HasSubstr("index shard grads-00001.f32: 1277 bytes, manifest says "
                                         "1280"),
                               HasSubstr("truncated"))));
  }
}

TEST(IndexStorage, FlippedByteInShardIsRefusedByFullVerification) {
  TempDir dir;
  BuildRandomIndex(dir.path(), 100, 8, 40);
  FlipByte(dir.file("grads-00002.f32"), 77);
  EXPECT_THAT(GradientIndex::Open(dir.path(), GradientIndex::Verify::kFull),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("grads-00002.f32"), HasSubstr("checksum 0x"),
                             HasSubstr("!= manifest 0x"))));
  // Size-only verification is the cheap check: it does not read the rows.
  TDA_ASSERT_OK(GradientIndex::Open(dir.path(), GradientIndex::Verify::kSizes));
}

TEST(IndexStorage, FlippedByteInSamplesIsRefused) {
  TempDir dir;
  BuildRandomIndex(dir.path(), 50, 8, 40);
  FlipByte(dir.file("samples.tsv"), 30);
  EXPECT_THAT(GradientIndex::Open(dir.path()),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("samples.tsv"), HasSubstr("checksum"))));
}

TEST(IndexStorage, FlippedByteInFactorsIsRefused) {
  TempDir dir;
  BuildRandomIndex(dir.path(), 50, 8, 40);
  FlipByte(dir.file("factors.safetensors"), 100);
  EXPECT_THAT(GradientIndex::Open(dir.path()),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("factors.safetensors"), HasSubstr("checksum"))));
}

TEST(IndexStorage, SamplesTableWithWrongRowCountIsRefused) {
  TempDir dir;
  BuildRandomIndex(dir.path(), 50, 8, 40);
  // A table that matches its manifest entry but lacks a row: the parser must notice.
  std::string samples = testing::ReadText(dir.file("samples.tsv"));
  samples = samples.substr(0, samples.rfind('\n', samples.size() - 2) + 1);
  Overwrite(dir.file("samples.tsv"), samples);
  auto m = ManifestFromJson(testing::ReadText(dir.file("manifest.json")), "manifest.json");
  TDA_ASSERT_OK(m);
  m->samples.bytes = samples.size();
  m->samples.xxh3 = ChecksumHex(Xxh3(samples));
  Overwrite(dir.file("manifest.json"), ManifestToJson(*m));
  EXPECT_THAT(GradientIndex::Open(dir.path()),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("samples.tsv"), HasSubstr("49 lines, manifest says 50"))));
}

TEST(IndexStorage, MissingShardIsRefused) {
  TempDir dir;
  BuildRandomIndex(dir.path(), 100, 8, 40);
  std::filesystem::remove(dir.file("grads-00002.f32"));
  EXPECT_THAT(GradientIndex::Open(dir.path(), GradientIndex::Verify::kSizes),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("grads-00002.f32"), HasSubstr("missing"))));
}

TEST(IndexStorage, NewerFormatVersionIsRefused) {
  TempDir dir;
  BuildRandomIndex(dir.path(), 20, 8, 40);
  std::string text = testing::ReadText(dir.file("manifest.json"));
  ASSERT_NE(text.find("\"format_version\": 1"), std::string::npos);
  Overwrite(dir.file("manifest.json"),
            absl::StrReplaceAll(text, {{"\"format_version\": 1", "\"format_version\": 3"}}));
  EXPECT_THAT(GradientIndex::Open(dir.path()),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("manifest.json"), HasSubstr("format version 3"),
                             HasSubstr("reads up to 2; upgrade tda"))));
}

TEST(IndexStorage, MalformedManifestIsRefused) {
  TempDir dir;
  BuildRandomIndex(dir.path(), 20, 8, 40);
  std::string text = testing::ReadText(dir.file("manifest.json"));
  Overwrite(dir.file("manifest.json"), text.substr(0, text.size() / 2));
  EXPECT_THAT(GradientIndex::Open(dir.path()),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("manifest.json"), HasSubstr("not valid JSON"))));
}

TEST(IndexStorage, MissingManifestMeansNoIndex) {
  TempDir dir;
  EXPECT_THAT(GradientIndex::Open(dir.file("nowhere")),
              StatusIs(absl::StatusCode::kNotFound,
                       AllOf(HasSubstr("no index at"), HasSubstr("tda index build"))));
  BuildRandomIndex(dir.path(), 20, 8, 40);
  std::filesystem::remove(dir.file("manifest.json"));
  EXPECT_THAT(
      GradientIndex::Open(dir.path()),
      StatusIs(absl::StatusCode::kNotFound, HasSubstr(absl::StrCat("no index at ", dir.path()))));
}

TEST(IndexStorage, InterruptedBuildLeavesNoIndexAndRebuildSucceeds) {
  TempDir dir;
  {
    auto writer = IndexWriter::Create(dir.path(), 8, /*rows_per_shard=*/10);
    TDA_ASSERT_OK(writer);
    std::vector<float> rows(25 * 8, 0.5f);
    std::vector<SampleRecord> samples;
    for (int i = 0; i < 25; ++i) samples.push_back({absl::StrCat("s", i), "src", 0, ""});
    TDA_ASSERT_OK((*writer)->AppendRows(rows.data(), samples));
    // Destroyed here, before Finish: as if the build were killed.
  }
  EXPECT_THAT(GradientIndex::Open(dir.path()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no index")));
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp-"), std::string::npos)
        << "temporary left behind: " << entry.path();
  }
  Built built = BuildRandomIndex(dir.path(), 30, 8, 10, /*seed=*/3);
  auto index = GradientIndex::Open(dir.path());
  TDA_ASSERT_OK(index);
  EXPECT_EQ((*index)->rows(), 30);
  float row[8];
  ASSERT_TRUE((*index)->CopyRow(29, row));
  EXPECT_EQ(std::memcmp(row, built.rows.row(29).data(), 8 * sizeof(float)), 0);
}

// Named *DeathTest so that gtest runs it first, before any OpenMP threads exist to fork.
TEST(IndexStorageDeathTest, BuildKilledBySignalLeavesNoIndexAndRebuildSucceeds) {
  TempDir dir;
  BuildRandomIndex(dir.path(), 40, 8, 10);  // An older, valid index in the same place.
  // "fast" style: the child is a fork of this process, so it writes into this same TempDir.
  ::testing::FLAGS_gtest_death_test_style = "fast";
  EXPECT_EXIT(
      {
        auto writer = IndexWriter::Create(dir.path(), 8, /*rows_per_shard=*/10);
        std::vector<float> rows(15 * 8, 0.5f);
        std::vector<SampleRecord> samples;
        for (int i = 0; i < 15; ++i) samples.push_back({absl::StrCat("s", i), "src", 0, ""});
        if (writer.ok() && (*writer)->AppendRows(rows.data(), samples).ok()) {
          std::raise(SIGKILL);  // One shard committed, the second half-written.
        }
        std::_Exit(1);
      },
      ::testing::KilledBySignal(SIGKILL), "");
  EXPECT_THAT(GradientIndex::Open(dir.path()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no index")));
  bool temporary_left = false;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    temporary_left |= entry.path().filename().string().find(".tmp-") != std::string::npos;
  }
  EXPECT_TRUE(temporary_left) << "the kill should have left a half-written shard";
  Built built = BuildRandomIndex(dir.path(), 25, 8, 10, /*seed=*/5);
  auto index = GradientIndex::Open(dir.path());
  TDA_ASSERT_OK(index);
  EXPECT_EQ((*index)->rows(), 25);
  float row[8];
  ASSERT_TRUE((*index)->CopyRow(24, row));
  EXPECT_EQ(std::memcmp(row, built.rows.row(24).data(), 8 * sizeof(float)), 0);
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp-"), std::string::npos)
        << "stale temporary not cleaned by the rebuild: " << entry.path();
  }
}

TEST(IndexStorage, CreateOverValidIndexInvalidatesItUntilFinish) {
  TempDir dir;
  BuildRandomIndex(dir.path(), 100, 8, 20);  // five shards
  TDA_ASSERT_OK(GradientIndex::Open(dir.path()));
  auto writer = IndexWriter::Create(dir.path(), 8, 20);
  TDA_ASSERT_OK(writer);
  EXPECT_THAT(GradientIndex::Open(dir.path()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no index")));
  std::vector<float> rows(30 * 8, -1.0f);
  std::vector<SampleRecord> samples;
  for (int i = 0; i < 30; ++i) samples.push_back({absl::StrCat("new/", i), "new", 1, "x"});
  TDA_ASSERT_OK((*writer)->AppendRows(rows.data(), samples));
  EXPECT_THAT(GradientIndex::Open(dir.path()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no index")));
  Manifest m = Descriptive(8);
  TDA_ASSERT_OK((*writer)->Finish(m));
  EXPECT_THAT((*writer)->AppendRows(rows.data(), samples),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("closed")));
  auto index = GradientIndex::Open(dir.path());
  TDA_ASSERT_OK(index);
  EXPECT_EQ((*index)->rows(), 30);
  EXPECT_EQ((*index)->FindRow("new/29"), 29);
  float row[8];
  ASSERT_TRUE((*index)->CopyRow(0, row));
  EXPECT_EQ(row[0], -1.0f);
  // The old build's extra shards are gone.
  EXPECT_FALSE(std::filesystem::exists(dir.file("grads-00002.f32")));
}

TEST(IndexStorage, FinishRequiresCallerFilesAndValidManifest) {
  TempDir dir;
  auto writer = IndexWriter::Create(dir.path(), 8, 20);
  TDA_ASSERT_OK(writer);
  std::vector<float> rows(3 * 8, 2.0f);
  TDA_ASSERT_OK((*writer)->AppendRows(rows.data(),
                                      {{"a", "s", 0, ""}, {"b", "s", 1, ""}, {"a", "s", 2, ""}}));
  EXPECT_THAT((*writer)->Finish(Descriptive(8)), StatusIs(absl::StatusCode::kInvalidArgument,
                                                          HasSubstr("'a' appears more than once")));

  TempDir dir2;
  writer = IndexWriter::Create(dir2.path(), 8, 20);
  TDA_ASSERT_OK(writer);
  TDA_ASSERT_OK((*writer)->AppendRows(rows.data(),
                                      {{"a", "s", 0, ""}, {"b", "s", 1, ""}, {"c", "s", 2, ""}}));
  EXPECT_THAT((*writer)->Finish(Descriptive(8)),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("factors.safetensors")));
  EXPECT_FALSE(std::filesystem::exists(dir2.file("manifest.json")));
  WriteCallerFiles(dir2.path(), 8);
  Manifest bad = Descriptive(8);
  bad.layer_dims = {5};
  EXPECT_THAT((*writer)->Finish(bad),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("layer_dims sum to 5")));
  EXPECT_FALSE(std::filesystem::exists(dir2.file("manifest.json")));
  TDA_ASSERT_OK((*writer)->Finish(Descriptive(8)));  // Retrying once the files are right works.
  TDA_ASSERT_OK(GradientIndex::Open(dir2.path()));
}

}  // namespace
}  // namespace tda
