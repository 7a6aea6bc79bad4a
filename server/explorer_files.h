// The attribution explorer's static files (server/explorer/: index.html, explorer.js,
// explorer.css), embedded into tda-server at build time by server/explorer/embed_files.cmake,
// so the binary serves them without reading anything from disk.
#pragma once

#include <cstddef>

#include "absl/types/span.h"

namespace tda {

struct EmbeddedFile {
  const char* name;  // file name under server/explorer/, e.g. "explorer.js"
  const unsigned char* bytes;
  size_t size;
};

absl::Span<const EmbeddedFile> ExplorerFiles();

}  // namespace tda
