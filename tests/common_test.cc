// Common building blocks: safetensors round trips and refuses corrupt files, .npy files load in
// NumPy, atomic writes leave either the old or the new file.
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "common/atomic_file.h"
#include "common/checksum.h"
#include "common/npy.h"
#include "common/safetensors.h"
#include "test_support.h"

namespace tda {
namespace {

using ::testing::HasSubstr;
using testing::StatusIs;
using testing::TempDir;

TEST(Safetensors, RoundTripsTensorsAndMetadata) {
  SafetensorsWriter writer;
  std::vector<float> w = {1, 2, 3, 4, 5, 6};
  std::vector<double> d = {0.5, -1.25};
  writer.AddF32("layers.0.weight", {2, 3}, w.data());
  writer.AddF64("scale", {2}, d.data());
  writer.SetMetadata("format", "pt");
  TempDir dir;
  TDA_ASSERT_OK(writer.WriteAtomically(dir.file("m.safetensors")));
  auto file = SafetensorsFile::Read(dir.file("m.safetensors"));
  TDA_ASSERT_OK(file);
  auto view = (*file)->Get("layers.0.weight", DType::kF32, {2, 3});
  TDA_ASSERT_OK(view);
  EXPECT_EQ(0, std::memcmp(view->bytes.data(), w.data(), w.size() * 4));
  EXPECT_EQ((*file)->metadata().at("format"), "pt");
  EXPECT_THAT((*file)->Get("scale", DType::kF32, {2}), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("F64[2]")));
  EXPECT_THAT((*file)->Get("missing"), StatusIs(absl::StatusCode::kNotFound, HasSubstr("missing")));
}

TEST(Safetensors, RefusesTruncatedAndCorruptHeaders) {
  SafetensorsWriter writer;
  std::vector<float> w(100, 1.0f);
  writer.AddF32("w", {10, 10}, w.data());
  const std::string good = writer.Serialize();
  EXPECT_THAT(SafetensorsFile::Parse(good.substr(0, good.size() - 4), "x"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("truncated")));
  EXPECT_THAT(SafetensorsFile::Parse(good.substr(0, 5), "x"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("truncated")));
  std::string huge_header = good;
  huge_header[7] = '\x7f';
  EXPECT_THAT(SafetensorsFile::Parse(huge_header, "x"), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("header length")));
  std::string bad_json = good;
  bad_json[8] = '[';
  EXPECT_THAT(SafetensorsFile::Parse(bad_json, "x"), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("x")));
  EXPECT_THAT(SafetensorsFile::Read("/nonexistent/file"), StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nonexistent/file")));
}

TEST(Npy, LoadsInNumpy) {
  TempDir dir;
  std::vector<float> v = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f, 8.0f};
  TDA_ASSERT_OK(WriteNpyF32(dir.file("v.npy"), {2, 3}, v.data()));
  const std::string cmd = "/usr/bin/python3 -c \"import numpy as n; a=n.load('" + dir.file("v.npy") +
                          "'); assert a.shape==(2,3) and a.dtype==n.float32 and a[0,2]==3.25 and a[1,2]==8, a\"";
  EXPECT_EQ(0, std::system(cmd.c_str()));
  TDA_ASSERT_OK(WriteNpyF32(dir.file("w.npy"), {6}, v.data()));
  const std::string cmd1 = "/usr/bin/python3 -c \"import numpy as n; a=n.load('" + dir.file("w.npy") +
                           "'); assert a.shape==(6,) and a[1]==-2, a\"";
  EXPECT_EQ(0, std::system(cmd1.c_str()));
}

TEST(AtomicFile, ReplacesWholeFileAndCleansUpUncommittedTemp) {
  TempDir dir;
  const std::string path = dir.file("f");
  TDA_ASSERT_OK(WriteFileAtomically(path, "old"));
  {
    AtomicFileWriter writer;
    TDA_ASSERT_OK(writer.Open(path));
    TDA_ASSERT_OK(writer.Append("new-but-abandoned", 17));
  }  // destroyed without Commit
  std::string contents;
  TDA_ASSERT_OK(ReadFile(path, &contents));
  EXPECT_EQ(contents, "old");
  int files = 0;
  for (auto& entry : std::filesystem::directory_iterator(dir.path())) files += entry.is_regular_file();
  EXPECT_EQ(files, 1) << "temporary file left behind";
  TDA_ASSERT_OK(WriteFileAtomically(path, "new"));
  TDA_ASSERT_OK(ReadFile(path, &contents));
  EXPECT_EQ(contents, "new");
}

TEST(Checksum, StreamingEqualsOneShotAndFile) {
  std::string data(100000, 'x');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 31);
  Xxh3Stream stream;
  stream.Update(data.data(), 1234);
  stream.Update(data.data() + 1234, data.size() - 1234);
  EXPECT_EQ(stream.Digest(), Xxh3(data));
  TempDir dir;
  TDA_ASSERT_OK(WriteFileAtomically(dir.file("d"), data));
  auto from_file = FileXxh3(dir.file("d"));
  TDA_ASSERT_OK(from_file);
  EXPECT_EQ(*from_file, Xxh3(data));
  EXPECT_EQ(ChecksumHex(0xabcULL), "0000000000000abc");
}

}  // namespace
}  // namespace tda
