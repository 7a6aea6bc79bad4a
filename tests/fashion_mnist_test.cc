// The Fashion-MNIST reader on the real Debian files, and its refusals.
#include "data/fashion_mnist.h"

#include <zlib.h>

#include "test_support.h"

namespace tda {
namespace {

using ::testing::HasSubstr;
using testing::StatusIs;

TEST(FashionMnist, ReadsRealSplitsWithStableIds) {
  auto train = LoadFashionMnist(kFashionMnistDefaultDir, Split::kTrain);
  TDA_ASSERT_OK(train);
  EXPECT_EQ(train->size(), 60000);
  EXPECT_EQ(train->feature_dim, 784);
  EXPECT_EQ(train->ids[17], "fashion-mnist/train/17");
  EXPECT_EQ(train->sources[17], "fashion-mnist/train");
  // Known first labels of the Fashion-MNIST training set: Ankle boot, T-shirt, T-shirt, Dress.
  EXPECT_EQ(train->labels[0], 9);
  EXPECT_EQ(train->labels[1], 0);
  EXPECT_EQ(train->labels[3], 3);
  std::vector<int> counts(10);
  for (int32_t l : train->labels) counts[l]++;
  for (int c : counts) EXPECT_EQ(c, 6000);  // balanced classes
  float lo = 1, hi = 0;
  for (float v : train->features) lo = std::min(lo, v), hi = std::max(hi, v);
  EXPECT_EQ(lo, 0.0f);
  EXPECT_EQ(hi, 1.0f);
  auto test = LoadFashionMnist(kFashionMnistDefaultDir, Split::kTest, 100);
  TDA_ASSERT_OK(test);
  EXPECT_EQ(test->size(), 100);
  EXPECT_EQ(test->ids[5], "fashion-mnist/test/5");
}

TEST(FashionMnist, RefusesMissingAndTruncatedFiles) {
  EXPECT_THAT(LoadFashionMnist("/nonexistent", Split::kTrain),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("dataset-fashion-mnist")));
  testing::TempDir dir;
  // A label file that is valid IDX but an image file cut short.
  auto write_gz = [&](const std::string& name, const std::string& bytes) {
    gzFile f = gzopen(dir.file(name).c_str(), "wb");
    gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
    gzclose(f);
  };
  std::string images("\x00\x00\x08\x03\x00\x00\x00\x02\x00\x00\x00\x1c\x00\x00\x00\x1c", 16);
  images += std::string(784, '\x10');  // only one of two images
  std::string labels("\x00\x00\x08\x01\x00\x00\x00\x02\x01\x02", 10);
  write_gz("t10k-images-idx3-ubyte.gz", images);
  write_gz("t10k-labels-idx1-ubyte.gz", labels);
  EXPECT_THAT(LoadFashionMnist(dir.path(), Split::kTest),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("truncated")));
}

TEST(FashionMnist, ParsesIds) {
  Split split;
  int64_t n = 0;
  TDA_ASSERT_OK(ParseFashionMnistId("fashion-mnist/test/42", &split, &n));
  EXPECT_EQ(split, Split::kTest);
  EXPECT_EQ(n, 42);
  EXPECT_THAT(ParseFashionMnistId("mnist/test/1", &split, &n),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("mnist/test/1")));
  EXPECT_THAT(ParseFashionMnistId("fashion-mnist/test/-3", &split, &n),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a Fashion-MNIST sample id")));
}

}  // namespace
}  // namespace tda
