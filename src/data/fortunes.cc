#include "data/fortunes.h"

#include <algorithm>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/atomic_file.h"
#include "common/status_macros.h"

namespace tda {
namespace {

bool IsBlank(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; });
}

}  // namespace

absl::StatusOr<std::vector<TextDocument>> ReadFortunes(const std::string& dir) {
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
  std::vector<TextDocument> docs;
  for (const std::string& category : categories) {
    std::string content;
    RETURN_IF_ERROR(ReadFile(dir + "/" + category, &content));
    std::string entry;
    int64_t n = 0;
    auto flush = [&] {
      if (!IsBlank(entry)) {
        docs.push_back({absl::StrCat("fortunes/", category, "/", n), category, entry, 0});
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

absl::StatusOr<Dataset> LoadFortunes(const std::string& dir, Split split,
                                     const TextSplitOptions& options, int64_t* truncated) {
  RETURN_IF_ERROR(ValidateTextSplitOptions(options));
  ASSIGN_OR_RETURN(std::vector<TextDocument> all, ReadFortunes(dir));
  return SplitDocuments(std::move(all), "fortunes", split, options, truncated);
}

}  // namespace tda
