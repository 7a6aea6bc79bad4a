// Content checksums for files tda writes: XXH3-64 from libxxhash (not hand-rolled).
// Rendered as 16 lowercase hex digits in manifests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace tda {

uint64_t Xxh3(const void* data, size_t size);
inline uint64_t Xxh3(std::string_view bytes) { return Xxh3(bytes.data(), bytes.size()); }

// Streaming XXH3-64 for data appended in pieces.
class Xxh3Stream {
 public:
  Xxh3Stream();
  ~Xxh3Stream();
  Xxh3Stream(const Xxh3Stream&) = delete;
  Xxh3Stream& operator=(const Xxh3Stream&) = delete;
  void Update(const void* data, size_t size);
  uint64_t Digest() const;

 private:
  void* state_;  // XXH3_state_t*, opaque to keep xxhash.h out of this header.
};

std::string ChecksumHex(uint64_t checksum);

// Checksum of a whole file, read in chunks.
[[nodiscard]] absl::StatusOr<uint64_t> FileXxh3(const std::string& path);

}  // namespace tda
