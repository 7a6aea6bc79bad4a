// JSONL text corpora: one JSON object per line, one document per object, in one or more files
// (plain, .gz or .zst: line_reader.h), read line by line without holding a file in memory.
//
// Fields (names configurable):
//   text                 the document; or, for instruction data, `prompt` + `completion`
//                        (both set in the options): only the completion's bytes carry loss
//   id (optional)        a string or an integer; missing: "<file name>:<line>"
//   source (optional)    the data source; missing (or source_from_file): the file's name
//                        without its extensions ("web" for web.jsonl.zst)
// Blank lines are skipped. Bytes that are not valid UTF-8 are kept as they are and counted.
//
// Errors name the file and the line: malformed JSON, a line that is not an object, a missing or
// non-string text field, an empty document, duplicate ids (both places). With skip_bad_lines a
// malformed or unusable line is skipped and counted instead (duplicates are still refused).
// Thread-compatible.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "data/dataset.h"
#include "data/fashion_mnist.h"
#include "data/text_document.h"

namespace tda {

struct JsonlOptions {
  std::vector<std::string> paths;
  std::string text_field = "text";
  std::string prompt_field;  // with completion_field: prompt + completion pairs
  std::string completion_field;
  std::string id_field = "id";
  std::string source_field = "source";
  bool source_from_file = false;  // every document's source is its file's name
  bool skip_bad_lines = false;
};

struct JsonlStats {
  int64_t documents = 0;
  int64_t skipped_lines = 0;         // with skip_bad_lines
  std::vector<std::string> skipped;  // the first reasons, "file:line: why"
  int64_t invalid_utf8_bytes = 0;
  int64_t documents_with_invalid_utf8 = 0;
};

// Visits every document of every file in order; stops at the first error (of the data, or of
// `visit`: its message is then prefixed with the document's "file:line: "). `stats` (optional)
// is filled as it goes.
[[nodiscard]] absl::Status ReadJsonlDocuments(
    const JsonlOptions& options, const std::function<absl::Status(TextDocument&&)>& visit,
    JsonlStats* stats = nullptr);

// The train (Split::kTrain) or held-out (Split::kTest) documents (IsHeldOut by id) as a
// sequence data set named "<first file's name>/train" or ".../held-out" (SplitDocuments: long
// documents chunked when split_options.chunk_stride > 0; then a document id that looks like a
// chunk id is kInvalidArgument naming its file and line).
[[nodiscard]] absl::StatusOr<Dataset> LoadJsonl(const JsonlOptions& options, Split split,
                                                const TextSplitOptions& split_options,
                                                int64_t* truncated = nullptr,
                                                JsonlStats* stats = nullptr);

// The name of a corpus's data sets: its first file's name without extensions ("web" for
// ".../web.jsonl.zst").
std::string JsonlCorpusName(const JsonlOptions& options);

// The content hash of a corpus's files (XXH3 of their XXH3s, in order), as 16 hex digits: a
// model records it so that a corpus changed after training is noticed.
[[nodiscard]] absl::StatusOr<std::string> JsonlCorpusHash(const std::vector<std::string>& paths);

// Writes documents as JSONL ({"id", "source", "text"}, or "prompt" and "completion" for pairs),
// atomically; bytes that are not valid UTF-8 are written as their escapes (see utf8_escape.h)
// so that ReadJsonlDocuments gives the same bytes back.
[[nodiscard]] absl::Status WriteJsonl(const std::vector<TextDocument>& docs,
                                      const std::string& path);

}  // namespace tda
