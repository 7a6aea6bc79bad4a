// Reader for the Debian `fortunes` corpus (/usr/share/games/fortunes, packages fortunes and
// fortunes-min). Every category file holds entries separated by lines that hold only `%`; each
// non-blank entry is one document with id "fortunes/<category>/<n>" (n = the entry's 0-based
// position in its file) and data source <category>. The .dat/.u8 companions and the
// offensive `off/` tree are not read.
//
// Held-out split: a document is held out when XXH3(id) with the split seed falls in the
// lowest `held_out_fraction` of the hash range, so membership depends on the id only and is
// stable when categories are added. Documents become byte-token rows (byte_tokenizer.h) of
// `context_length` positions; longer documents are truncated (the count is reported).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "data/dataset.h"
#include "data/fashion_mnist.h"

namespace tda {

inline constexpr char kFortunesDefaultDir[] = "/usr/share/games/fortunes";

struct FortuneDocument {
  std::string id;      // fortunes/<category>/<n>
  std::string source;  // <category>
  std::string text;    // the entry's lines, each ending in '\n'
};

struct FortunesOptions {
  int64_t context_length = 256;
  double held_out_fraction = 0.05;
  uint64_t split_seed = 0;
  int64_t limit = 0;  // first N documents of the split (in id order); 0 = all
};

// Every document of every category in `dir`, categories in name order.
// kNotFound (with an install hint) when `dir` has no category files.
absl::StatusOr<std::vector<FortuneDocument>> ReadFortunes(const std::string& dir);

bool IsHeldOutFortune(const std::string& id, uint64_t split_seed, double held_out_fraction);

// The train (Split::kTrain) or held-out (Split::kTest) documents as a sequence data set named
// "fortunes/train" or "fortunes/held-out"; `truncated` (optional) receives how many of its
// documents were longer than the context.
absl::StatusOr<Dataset> LoadFortunes(const std::string& dir, Split split,
                                     const FortunesOptions& options, int64_t* truncated = nullptr);

// Documents as a sequence data set (rows of `context_length` positions), in the given order.
Dataset DocumentsToDataset(const std::vector<FortuneDocument>& docs, const std::string& name,
                           int64_t context_length, int64_t* truncated = nullptr);

}  // namespace tda
