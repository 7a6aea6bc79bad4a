// Reader for the Debian `fortunes` corpus (/usr/share/games/fortunes, packages fortunes and
// fortunes-min). Every category file holds entries separated by lines that hold only `%`; each
// non-blank entry is one document with id "fortunes/<category>/<n>" (n = the entry's 0-based
// position in its file) and data source <category>. The .dat/.u8 companions and the
// offensive `off/` tree are not read.
//
// Held-out split by id hash (IsHeldOut, text_document.h). Documents become byte-token rows
// (byte_tokenizer.h) of `context_length` positions; longer documents are chunked into windows
// (chunk_stride > 0, ids "<id>#<k>") or truncated (chunk_stride 0; the count is reported).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "data/dataset.h"
#include "data/fashion_mnist.h"
#include "data/text_document.h"

namespace tda {

inline constexpr char kFortunesDefaultDir[] = "/usr/share/games/fortunes";

// Every document of every category in `dir`, categories in name order.
// kNotFound (with an install hint) when `dir` has no category files.
[[nodiscard]] absl::StatusOr<std::vector<TextDocument>> ReadFortunes(const std::string& dir);

// The train (Split::kTrain) or held-out (Split::kTest) documents as a sequence data set named
// "fortunes/train" or "fortunes/held-out"; `truncated` (optional) receives how many of its
// documents were longer than the context.
[[nodiscard]] absl::StatusOr<Dataset> LoadFortunes(const std::string& dir, Split split,
                                     const TextSplitOptions& options, int64_t* truncated = nullptr);

}  // namespace tda
