// A minimal PNG encoder for small grayscale images (8-bit, one IDAT chunk compressed with
// zlib, CRC-32 from zlib): enough to embed sample images in tda's HTML reports.
// Thread-safe (pure functions).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace tda {

// `pixels` is height x width, row-major, 0 = black, 255 = white. Returns the PNG file bytes.
// kInvalidArgument when the sizes disagree or are not positive.
[[nodiscard]] absl::StatusOr<std::string> EncodeGrayPng(const std::vector<uint8_t>& pixels, int width,
                                          int height);

// Features in [0, 1] (clamped) of a square image (side x side, side = sqrt(size)) as PNG bytes.
// kInvalidArgument when the count is not a perfect square.
[[nodiscard]] absl::StatusOr<std::string> SquareImagePng(const std::vector<float>& features);

}  // namespace tda
