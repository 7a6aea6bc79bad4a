// The Fashion-MNIST reader on the real Debian files, and its refusals.
#include "data/fashion_mnist.h"

#include <zlib.h>

#include <filesystem>
#include <memory>

#include "model/recipe_data.h"
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

// Served indexes over the same data share one loaded copy of it, for as long as one holds it;
// a failed load is not kept.
TEST(FashionMnist, SharedRecipeDataIsLoadedOnceAndAFailureIsRetried) {
  testing::TempDir dir;
  ModelConfig config;
  TrainRecipe recipe;
  recipe.data_dir = dir.path();
  EXPECT_THAT(LoadSharedRecipeData(config, recipe, Split::kTest),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("t10k")));
  for (const char* name : {"t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}) {
    std::filesystem::create_symlink(std::string(kFashionMnistDefaultDir) + "/" + name, dir.file(name));
  }
  absl::StatusOr<std::shared_ptr<const Dataset>> first = LoadSharedRecipeData(config, recipe, Split::kTest);
  TDA_ASSERT_OK(first);
  EXPECT_EQ((*first)->size(), 10000);
  absl::StatusOr<std::shared_ptr<const Dataset>> again = LoadSharedRecipeData(config, recipe, Split::kTest);
  TDA_ASSERT_OK(again);
  EXPECT_EQ(again->get(), first->get());
  recipe.held_out_fraction = 0.25;  // a different recipe key: its own copy
  absl::StatusOr<std::shared_ptr<const Dataset>> other = LoadSharedRecipeData(config, recipe, Split::kTest);
  TDA_ASSERT_OK(other);
  EXPECT_NE(other->get(), first->get());
  const std::weak_ptr<const Dataset> watch = *first;
  *first = nullptr;
  EXPECT_FALSE(watch.expired()) << "still held by the second caller";
  *again = nullptr;
  EXPECT_TRUE(watch.expired()) << "freed with its last holder";
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

TEST(FashionMnist, DownsamplingAveragesBlocksAndRefusesOtherSides) {
  absl::StatusOr<Dataset> images = LoadFashionMnist(kFashionMnistDefaultDir, Split::kTest, 3);
  TDA_ASSERT_OK(images);
  absl::StatusOr<Dataset> small = DownsampleFashionMnist(*images, 14);
  TDA_ASSERT_OK(small);
  ASSERT_EQ(small->feature_dim, 196);
  ASSERT_EQ(small->size(), 3);
  for (int64_t i = 0; i < 3; ++i) {
    const float* in = images->row(i);
    // Pixel (3, 5) of the 14x14 image is the mean of the 2x2 block at rows 6-7, columns 10-11.
    const float expected = (in[6 * 28 + 10] + in[6 * 28 + 11] + in[7 * 28 + 10] + in[7 * 28 + 11]) / 4;
    EXPECT_NEAR(small->row(i)[3 * 14 + 5], expected, 1e-6);
  }
  EXPECT_EQ(small->labels, images->labels);
  absl::StatusOr<Dataset> same = DownsampleFashionMnist(*images, 28);
  TDA_ASSERT_OK(same);
  EXPECT_EQ(same->features, images->features);
  EXPECT_THAT(DownsampleFashionMnist(*images, 5).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("does not divide 28")));
  EXPECT_THAT(DownsampleFashionMnist(*small, 7).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not 28x28 images")));
}

}  // namespace
}  // namespace tda
