#include "data/fortunes.h"

#include <algorithm>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/atomic_file.h"
#include "common/checksum.h"
#include "common/status_macros.h"
#include "data/byte_tokenizer.h"

namespace tda {
namespace {

bool IsBlank(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; });
}

}  // namespace

absl::StatusOr<std::vector<FortuneDocument>> ReadFortunes(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code error;
  std::vector<std::string> categories;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, error)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_regular_file() || entry.is_symlink() || absl::EndsWith(name, ".dat") ||
        absl::EndsWith(name, ".u8") || absl::StartsWith(name, ".")) {
      continue;
    }
    categories.push_back(name);
  }
  if (error || categories.empty()) {
    return absl::NotFoundError(absl::StrCat("no fortune files in '", dir,
                                            "' (install the Debian packages fortunes and "
                                            "fortunes-min, or pass the corpus directory)"));
  }
  std::sort(categories.begin(), categories.end());
  std::vector<FortuneDocument> docs;
  for (const std::string& category : categories) {
    std::string content;
    RETURN_IF_ERROR(ReadFile(dir + "/" + category, &content));
    std::string entry;
    int64_t n = 0;
    auto flush = [&] {
      if (!IsBlank(entry)) {
        docs.push_back({absl::StrCat("fortunes/", category, "/", n), category, entry});
      }
      entry.clear();
      ++n;
    };
    for (absl::string_view line : absl::StrSplit(content, '\n')) {
      if (line == "%") {
        flush();
      } else {
        absl::StrAppend(&entry, line, "\n");
      }
    }
    // The text after the last separator (usually just the file's final newline).
    if (!entry.empty() && entry.back() == '\n' && !content.empty() && content.back() == '\n') {
      entry.pop_back();  // StrSplit yields an empty piece after the final newline
    }
    flush();
  }
  return docs;
}

bool IsHeldOutFortune(const std::string& id, uint64_t split_seed, double held_out_fraction) {
  const uint64_t h = Xxh3(absl::StrCat(split_seed, ":", id));
  return static_cast<double>(h >> 11) * 0x1.0p-53 < held_out_fraction;
}

Dataset DocumentsToDataset(const std::vector<FortuneDocument>& docs, const std::string& name,
                           int64_t context_length, int64_t* truncated) {
  Dataset data;
  data.name = name;
  data.sequence_length = context_length;
  const size_t cells = docs.size() * static_cast<size_t>(context_length);
  data.tokens.resize(cells);
  data.targets.resize(cells);
  int64_t cut = 0;
  for (size_t i = 0; i < docs.size(); ++i) {
    const size_t at = i * static_cast<size_t>(context_length);
    cut += WriteDocumentRow(docs[i].text, context_length, &data.tokens[at], &data.targets[at]);
    data.ids.push_back(docs[i].id);
    data.sources.push_back(docs[i].source);
    data.previews.push_back(docs[i].text);
  }
  if (truncated != nullptr) *truncated = cut;
  return data;
}

absl::StatusOr<Dataset> LoadFortunes(const std::string& dir, Split split,
                                     const FortunesOptions& options, int64_t* truncated) {
  if (options.context_length <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("context length must be > 0, got ", options.context_length));
  }
  if (!(options.held_out_fraction >= 0 && options.held_out_fraction < 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("held-out fraction must be in [0, 1), got ", options.held_out_fraction));
  }
  ASSIGN_OR_RETURN(std::vector<FortuneDocument> all, ReadFortunes(dir));
  const bool want_held_out = split == Split::kTest;
  std::vector<FortuneDocument> chosen;
  for (FortuneDocument& doc : all) {
    if (options.limit > 0 && static_cast<int64_t>(chosen.size()) >= options.limit) break;
    if (IsHeldOutFortune(doc.id, options.split_seed, options.held_out_fraction) == want_held_out) {
      chosen.push_back(std::move(doc));
    }
  }
  return DocumentsToDataset(chosen, want_held_out ? "fortunes/held-out" : "fortunes/train",
                            options.context_length, truncated);
}

}  // namespace tda
