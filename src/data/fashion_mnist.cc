#include "data/fashion_mnist.h"

#include <zlib.h>

#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "absl/strings/str_split.h"

namespace tda {
namespace {

absl::StatusOr<std::string> ReadGzip(const std::string& path) {
  if (!std::filesystem::exists(path)) {
    return absl::NotFoundError(absl::StrCat(
        "Fashion-MNIST file ", path,
        " not found (install the Debian package dataset-fashion-mnist, or pass --data-dir)"));
  }
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::string out;
  char buffer[1 << 16];
  int n;
  while ((n = gzread(file, buffer, sizeof(buffer))) > 0) out.append(buffer, static_cast<size_t>(n));
  int err = 0;
  const char* message = gzerror(file, &err);
  gzclose(file);
  if (n < 0 || (err != Z_OK && err != Z_STREAM_END)) {
    return absl::DataLossError(absl::StrCat("cannot decompress ", path, ": ", message));
  }
  return out;
}

uint32_t BigEndian32(const std::string& bytes, size_t offset) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data() + offset);
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// Validates an IDX header: magic 0x0000080N (unsigned bytes, N dims) and the payload size.
absl::Status CheckIdx(const std::string& bytes, const std::string& path, uint32_t dims,
                      uint32_t* count, size_t item_size) {
  size_t header = 4 + 4 * dims;
  if (bytes.size() < header || BigEndian32(bytes, 0) != (0x0800u | dims)) {
    return absl::DataLossError(absl::StrCat(path, ": not an IDX file with ", dims, " dimensions"));
  }
  *count = BigEndian32(bytes, 4);
  if (bytes.size() != header + size_t{*count} * item_size) {
    return absl::DataLossError(absl::StrCat(path, ": expected ", header + size_t{*count} * item_size,
                                            " bytes, found ", bytes.size(), " (truncated?)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Dataset> LoadFashionMnist(const std::string& dir, Split split, int64_t limit) {
  const std::string prefix = split == Split::kTrain ? "train" : "t10k";
  const std::string split_name = split == Split::kTrain ? "train" : "test";
  const std::string image_path = absl::StrCat(dir, "/", prefix, "-images-idx3-ubyte.gz");
  const std::string label_path = absl::StrCat(dir, "/", prefix, "-labels-idx1-ubyte.gz");
  absl::StatusOr<std::string> images = ReadGzip(image_path);
  if (!images.ok()) return images.status();
  absl::StatusOr<std::string> labels = ReadGzip(label_path);
  if (!labels.ok()) return labels.status();

  if (images->size() < 16) return absl::DataLossError(absl::StrCat(image_path, ": truncated"));
  const uint32_t rows = BigEndian32(*images, 8), cols = BigEndian32(*images, 12);
  if (rows != 28 || cols != 28) {
    return absl::DataLossError(absl::StrCat(image_path, ": images are ", rows, "x", cols, ", expected 28x28"));
  }
  uint32_t image_count = 0, label_count = 0;
  if (absl::Status s = CheckIdx(*images, image_path, 3, &image_count, 784); !s.ok()) return s;
  if (absl::Status s = CheckIdx(*labels, label_path, 1, &label_count, 1); !s.ok()) return s;
  if (image_count != label_count) {
    return absl::DataLossError(absl::StrCat(image_path, " has ", image_count, " images but ",
                                            label_path, " has ", label_count, " labels"));
  }
  int64_t n = image_count;
  if (limit > 0 && limit < n) n = limit;

  Dataset data;
  data.name = absl::StrCat("fashion-mnist/", split_name);
  data.feature_dim = 784;
  data.class_names = FashionMnistClassNames();
  data.features.resize(static_cast<size_t>(n) * 784);
  data.labels.resize(static_cast<size_t>(n));
  data.ids.resize(static_cast<size_t>(n));
  data.sources.assign(static_cast<size_t>(n), data.name);
  const auto* pixels = reinterpret_cast<const unsigned char*>(images->data() + 16);
  const auto* label_bytes = reinterpret_cast<const unsigned char*>(labels->data() + 8);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < 784; ++j) data.features[i * 784 + j] = pixels[i * 784 + j] / 255.0f;
    if (label_bytes[i] > 9) {
      return absl::DataLossError(absl::StrCat(label_path, ": label ", int{label_bytes[i]},
                                              " of sample ", i, " is not in 0..9"));
    }
    data.labels[i] = label_bytes[i];
    data.ids[i] = absl::StrCat(data.name, "/", i);
  }
  return data;
}

const std::vector<std::string>& FashionMnistClassNames() {
  static const std::vector<std::string> kNames = {"T-shirt/top", "Trouser", "Pullover", "Dress",
                                                  "Coat",        "Sandal",  "Shirt",    "Sneaker",
                                                  "Bag",         "Ankle boot"};
  return kNames;
}

absl::Status ParseFashionMnistId(const std::string& id, Split* split, int64_t* ordinal) {
  std::vector<std::string> parts = absl::StrSplit(id, '/');
  if (parts.size() != 3 || parts[0] != "fashion-mnist" || (parts[1] != "train" && parts[1] != "test") ||
      !absl::SimpleAtoi(parts[2], ordinal) || *ordinal < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", id, "' is not a Fashion-MNIST sample id (expected fashion-mnist/train/<n> or "
                 "fashion-mnist/test/<n>)"));
  }
  *split = parts[1] == "train" ? Split::kTrain : Split::kTest;
  return absl::OkStatus();
}

absl::StatusOr<Dataset> DownsampleFashionMnist(const Dataset& data, int64_t side) {
  constexpr int64_t kSide = 28;
  if (side < 1 || side > kSide || kSide % side != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("image side ", side, " does not divide 28 (use 7, 14 or 28)"));
  }
  if (data.feature_dim != kSide * kSide) {
    return absl::InvalidArgumentError(absl::StrCat(
        data.name, " has ", data.feature_dim, " features, not 28x28 images"));
  }
  if (side == kSide) return data;
  Dataset out = data;
  const int64_t factor = kSide / side;
  out.feature_dim = side * side;
  out.features.assign(static_cast<size_t>(data.size() * side * side), 0.0f);
  for (int64_t i = 0; i < data.size(); ++i) {
    for (int64_t r = 0; r < kSide; ++r) {
      for (int64_t c = 0; c < kSide; ++c) {
        out.features[i * side * side + (r / factor) * side + c / factor] +=
            data.row(i)[r * kSide + c] / static_cast<float>(factor * factor);
      }
    }
  }
  return out;
}

absl::StatusOr<Dataset> LoadFashionMnistAtSide(const std::string& dir, Split split, int64_t limit,
                                               int64_t side) {
  ASSIGN_OR_RETURN(Dataset full, LoadFashionMnist(dir, split, limit));
  return DownsampleFashionMnist(full, side);
}

}  // namespace tda
