#include "client/png_encoder.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace tda {

namespace {

void AppendU32(std::string* out, uint32_t v) {
  out->push_back(static_cast<char>((v >> 24) & 0xff));
  out->push_back(static_cast<char>((v >> 16) & 0xff));
  out->push_back(static_cast<char>((v >> 8) & 0xff));
  out->push_back(static_cast<char>(v & 0xff));
}

// length, type, data, CRC-32 of type + data (PNG spec, section 5.3).
void AppendChunk(std::string* out, const char type[4], const std::string& data) {
  AppendU32(out, static_cast<uint32_t>(data.size()));
  const size_t type_start = out->size();
  out->append(type, 4);
  out->append(data);
  const uLong crc = crc32(0L, reinterpret_cast<const Bytef*>(out->data() + type_start),
                          static_cast<uInt>(out->size() - type_start));
  AppendU32(out, static_cast<uint32_t>(crc));
}

}  // namespace

absl::StatusOr<std::string> EncodeGrayPng(const std::vector<uint8_t>& pixels, int width,
                                          int height) {
  if (width <= 0 || height <= 0 ||
      pixels.size() != static_cast<size_t>(width) * static_cast<size_t>(height)) {
    return absl::InvalidArgumentError(
        absl::StrCat("PNG: ", pixels.size(), " pixels for a ", width, " x ", height, " image"));
  }
  // Scanlines, each preceded by filter type 0 (None).
  std::string raw;
  raw.reserve(static_cast<size_t>(height) * (width + 1));
  for (int y = 0; y < height; ++y) {
    raw.push_back('\0');
    raw.append(reinterpret_cast<const char*>(pixels.data()) + static_cast<size_t>(y) * width,
               static_cast<size_t>(width));
  }
  uLongf compressed_size = compressBound(static_cast<uLong>(raw.size()));
  std::string compressed(compressed_size, '\0');
  if (compress2(reinterpret_cast<Bytef*>(compressed.data()), &compressed_size,
                reinterpret_cast<const Bytef*>(raw.data()), static_cast<uLong>(raw.size()),
                Z_BEST_COMPRESSION) != Z_OK) {
    return absl::InternalError("PNG: zlib compression failed");
  }
  compressed.resize(compressed_size);

  std::string png("\x89PNG\r\n\x1a\n", 8);
  std::string header;
  AppendU32(&header, static_cast<uint32_t>(width));
  AppendU32(&header, static_cast<uint32_t>(height));
  header.push_back(8);  // bit depth
  header.push_back(0);  // color type: grayscale
  header.push_back(0);  // compression: deflate
  header.push_back(0);  // filter method
  header.push_back(0);  // no interlace
  AppendChunk(&png, "IHDR", header);
  AppendChunk(&png, "IDAT", compressed);
  AppendChunk(&png, "IEND", "");
  return png;
}

absl::StatusOr<std::string> SquareImagePng(const std::vector<float>& features) {
  const int side = static_cast<int>(std::lround(std::sqrt(static_cast<double>(features.size()))));
  if (side <= 0 || static_cast<size_t>(side) * side != features.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(features.size(), " features are not a square image"));
  }
  std::vector<uint8_t> pixels(features.size());
  for (size_t i = 0; i < features.size(); ++i) {
    const float v = std::isfinite(features[i]) ? std::clamp(features[i], 0.0f, 1.0f) : 0.0f;
    pixels[i] = static_cast<uint8_t>(std::lround(v * 255.0f));
  }
  return EncodeGrayPng(pixels, side, side);
}

}  // namespace tda
