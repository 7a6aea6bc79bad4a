// A data-parallel build's index parts (index/index_part.h): writers of three ranks over one
// directory, rank 0's Finish merging the others' reports into one index, and the damage it
// must refuse (parts out of order, a part's sample table that fails its checksum, a malformed
// report), each without writing a manifest.
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "index/gradient_index.h"
#include "index/index_part.h"
#include "index/index_writer.h"
#include "random_index.h"
#include "test_support.h"

namespace tda {
namespace {

using testing::BuildRandomIndex;
using testing::Built;
using testing::Descriptive;
using testing::FlipByte;
using ::testing::HasSubstr;
using testing::StatusIs;
using testing::TempDir;
using testing::WriteCallerFiles;

// A distributed build's writers: rank 0 and two other ranks' parts of one directory (rows
// [0, 40), [40, 70), [70, 100), 16 rows a shard). Returns rank 0's writer and the parts' reports
// as sent between ranks (text).
std::unique_ptr<IndexWriter> WriteParts(const std::string& dir, const Built& built,
                                        std::vector<std::string>* reports) {
  const int64_t dim = built.rows.cols();
  const std::vector<IndexPart> parts = {{0, 0, 0}, {1, 40, 3}, {2, 70, 5}};
  const std::vector<int64_t> ends = {40, 70, 100};
  std::unique_ptr<IndexWriter> primary;
  for (size_t p = 0; p < parts.size(); ++p) {
    auto writer = IndexWriter::Create(dir, dim, 16, RowDType::kF32, parts[p]);
    EXPECT_TRUE(writer.ok()) << writer.status();
    if (!writer.ok()) return nullptr;
    const int64_t begin = parts[p].first_row;
    std::vector<SampleRecord> samples(built.samples.begin() + begin,
                                      built.samples.begin() + ends[p]);
    EXPECT_TRUE((*writer)->AppendRows(built.rows.row(begin).data(), samples).ok());
    if (p == 0) {
      primary = std::move(*writer);
      continue;
    }
    absl::StatusOr<IndexPartSummary> summary = (*writer)->FinishPart();
    EXPECT_TRUE(summary.ok()) << summary.status();
    if (summary.ok()) reports->push_back(IndexPartSummaryToText(*summary));
  }
  WriteCallerFiles(dir, dim);
  return primary;
}

std::vector<IndexPartSummary> ParseParts(const std::vector<std::string>& reports) {
  std::vector<IndexPartSummary> parts;
  for (const std::string& report : reports) {
    absl::StatusOr<IndexPartSummary> part = IndexPartSummaryFromText(report, "report");
    EXPECT_TRUE(part.ok()) << part.status();
    if (part.ok()) parts.push_back(*part);
  }
  return parts;
}

TEST(IndexParts, RanksPartsMergeIntoOneIndexAndDamagedPartsAreRefused) {
  const int64_t n = 100, dim = 6;
  TempDir source;
  const Built built = BuildRandomIndex(source.path(), n, dim, 16);
  {  // parts out of order, then a part's sample table damaged: no manifest either time
    TempDir dir;
    std::vector<std::string> reports;
    std::unique_ptr<IndexWriter> primary = WriteParts(dir.path(), built, &reports);
    ASSERT_NE(primary, nullptr);
    std::vector<IndexPartSummary> parts = ParseParts(reports);
    std::swap(parts[0], parts[1]);
    EXPECT_THAT(primary->Finish(Descriptive(dim), parts),
                StatusIs(absl::StatusCode::kDataLoss, HasSubstr("rank 2's part")));
    EXPECT_FALSE(std::filesystem::exists(dir.file("manifest.json")));
  }
  {
    TempDir dir;
    std::vector<std::string> reports;
    std::unique_ptr<IndexWriter> primary = WriteParts(dir.path(), built, &reports);
    ASSERT_NE(primary, nullptr);
    FlipByte(dir.file(SamplePartFileName(2)), 3);
    EXPECT_THAT(primary->Finish(Descriptive(dim), ParseParts(reports)),
                StatusIs(absl::StatusCode::kDataLoss, HasSubstr("does not match its checksum")));
    EXPECT_FALSE(std::filesystem::exists(dir.file("manifest.json")));
  }
  EXPECT_THAT(IndexPartSummaryFromText("part 1 40\nsamples x 1 abc\n", "rank 1's report"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("rank 1's report line 1")));

  TempDir dir;
  std::vector<std::string> reports;
  std::unique_ptr<IndexWriter> primary = WriteParts(dir.path(), built, &reports);
  ASSERT_NE(primary, nullptr);
  TDA_ASSERT_OK(primary->Finish(Descriptive(dim), ParseParts(reports)));
  auto index = GradientIndex::Open(dir.path());  // every checksum verified
  TDA_ASSERT_OK(index);
  ASSERT_EQ((*index)->rows(), n);
  EXPECT_EQ((*index)->manifest().shards.size(), 7u);  // 3 + 2 + 2
  EXPECT_EQ((*index)->manifest().shards[3].file.file, "grads-00003.f32");
  EXPECT_EQ((*index)->manifest().shards[3].row_begin, 40);
  std::vector<float> row(static_cast<size_t>(dim));
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_TRUE((*index)->CopyRow(i, row.data()));
    ASSERT_EQ(std::memcmp(row.data(), built.rows.row(i).data(), dim * sizeof(float)), 0) << i;
    ASSERT_EQ((*index)->sample(i).id, built.samples[i].id);
  }
  EXPECT_EQ(testing::ReadText(dir.file("samples.tsv")),
            testing::ReadText(source.file("samples.tsv")));
  EXPECT_FALSE(std::filesystem::exists(dir.file(SamplePartFileName(1))));  // merged, removed
}

}  // namespace
}  // namespace tda
