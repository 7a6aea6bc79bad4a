// Reader for the Fashion-MNIST IDX files (gzip) shipped by Debian's dataset-fashion-mnist.
// Sample i of split S gets id "fashion-mnist/S/i" and source "fashion-mnist/S"; pixels are
// scaled to [0, 1].
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "data/dataset.h"

namespace tda {

inline constexpr char kFashionMnistDefaultDir[] = "/usr/share/datasets/fashion-mnist";

// Loads the first `limit` samples of `split` (all when limit <= 0) from `dir`.
// kNotFound when the files are missing (with a hint to install the Debian package),
// kDataLoss when a file is truncated or its header is not IDX.
[[nodiscard]] absl::StatusOr<Dataset> LoadFashionMnist(const std::string& dir, Split split, int64_t limit = 0);

// Each 28x28 image area-averaged to side x side; `side` must divide 28 (28 returns the data as
// it is). kInvalidArgument for another side or data that is not 28x28 images.
[[nodiscard]] absl::StatusOr<Dataset> DownsampleFashionMnist(const Dataset& data, int64_t side);

// LoadFashionMnist then DownsampleFashionMnist: the small images of `tda eval` and its jobs.
[[nodiscard]] absl::StatusOr<Dataset> LoadFashionMnistAtSide(const std::string& dir, Split split, int64_t limit,
                                               int64_t side);

// The ten class names, by label.
const std::vector<std::string>& FashionMnistClassNames();

// Parses "fashion-mnist/<split>/<n>" into its split and ordinal; kInvalidArgument otherwise.
[[nodiscard]] absl::Status ParseFashionMnistId(const std::string& id, Split* split, int64_t* ordinal);

}  // namespace tda
