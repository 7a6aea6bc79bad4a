#include "random_index.h"

#include <algorithm>
#include <fstream>
#include <random>

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "common/safetensors.h"
#include "test_support.h"

namespace tda::testing {
namespace {

constexpr const char* kClassNames[] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                       "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

}  // namespace

void WriteCallerFiles(const std::string& dir, int64_t dim) {
  SafetensorsWriter factors;
  std::vector<double> a_cov = {2.0, 0.5, 0.5, 1.0}, s_cov = {1.5, 0.0, 0.0, 0.25};
  factors.AddF64("layers.0.a_cov", {2, 2}, a_cov.data());
  factors.AddF64("layers.0.s_cov", {2, 2}, s_cov.data());
  factors.SetMetadata("examples", "1000");
  factors.SetMetadata("fisher", "true");
  ASSERT_TRUE(factors.WriteAtomically(dir + "/factors.safetensors").ok());
  ASSERT_TRUE(MakeDirectories(dir + "/model").ok());
  SafetensorsWriter weights;
  std::vector<float> w(static_cast<size_t>(dim), 0.25f);
  weights.AddF32("layers.0.weight", {1, dim}, w.data());
  ASSERT_TRUE(weights.WriteAtomically(dir + "/model/model.safetensors").ok());
  ASSERT_TRUE(WriteFileAtomically(dir + "/model/config.json",
                                  "{\"model\": {\"kind\": \"mlp\"}, \"recipe\": {}}\n")
                  .ok());
}

Manifest Descriptive(int64_t dim) {
  Manifest m;
  m.model_fingerprint = "0123456789abcdef";
  m.dataset = "fashion-mnist/train";
  m.data_dir = "/usr/share/datasets/fashion-mnist";
  m.projection_dim_per_side = 0;
  m.projection_seed = 42;
  m.layer_dims = {dim - dim / 3, dim / 3};
  m.factor_examples = 1000;
  return m;
}

Built BuildRandomIndex(const std::string& dir, int64_t n, int64_t dim, int64_t rows_per_shard,
                       uint32_t seed) {
  Built built;
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  built.rows.resize(n, dim);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < dim; ++j) built.rows(i, j) = normal(rng);
    int label = static_cast<int>((i * 7 + seed) % 10);
    built.samples.push_back({absl::StrCat("fashion-mnist/train/", i), "fashion-mnist/train", label,
                             absl::StrCat("label ", label, " (", kClassNames[label], ")")});
  }
  auto writer = IndexWriter::Create(dir, dim, rows_per_shard);
  EXPECT_TRUE(writer.ok()) << writer.status();
  if (!writer.ok()) return built;
  int64_t begin = 0, chunk = 7;
  while (begin < n) {
    int64_t count = std::min(chunk, n - begin);
    std::vector<SampleRecord> part(built.samples.begin() + begin,
                                   built.samples.begin() + begin + count);
    EXPECT_TRUE((*writer)->AppendRows(built.rows.row(begin).data(), part).ok());
    begin += count;
    chunk = chunk * 3 + 1;
  }
  WriteCallerFiles(dir, dim);
  absl::Status finished = (*writer)->Finish(Descriptive(dim));
  EXPECT_TRUE(finished.ok()) << finished;
  return built;
}

void Overwrite(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
}

void FlipByte(const std::string& path, size_t offset) {
  std::string contents = ReadText(path);
  ASSERT_LT(offset, contents.size());
  contents[offset] ^= 0x10;
  Overwrite(path, contents);
}

}  // namespace tda::testing
