#include "index/index_part.h"

#include <cstdio>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace tda {
namespace {

bool ParseFile(const std::vector<std::string>& fields, FileEntry* file) {
  file->file = fields[1];
  file->xxh3 = fields[3];
  return absl::SimpleAtoi(fields[2], &file->bytes) && file->xxh3.size() == 16;
}

}  // namespace

std::string SamplePartFileName(int rank) {
  char name[40];
  std::snprintf(name, sizeof(name), "samples-part-%05d.tsv", rank);
  return name;
}

std::string IndexPartSummaryToText(const IndexPartSummary& part) {
  std::string text =
      absl::StrCat("part ", part.rank, " ", part.first_row, " ", part.end_row, "\n", "samples ",
                   part.samples.file, " ", part.samples.bytes, " ", part.samples.xxh3, "\n");
  for (const ShardEntry& shard : part.shards) {
    absl::StrAppend(&text, "shard ", shard.file.file, " ", shard.file.bytes, " ", shard.file.xxh3,
                    " ", shard.row_begin, " ", shard.row_end, "\n");
  }
  return text;
}

absl::StatusOr<IndexPartSummary> IndexPartSummaryFromText(const std::string& text,
                                                          const std::string& source) {
  IndexPartSummary part;
  bool have_part = false, have_samples = false;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    ++line_number;
    const std::vector<std::string> fields = absl::StrSplit(line, ' ');
    bool ok = false;
    if (fields[0] == "part" && fields.size() == 4) {
      ok = absl::SimpleAtoi(fields[1], &part.rank) &&
           absl::SimpleAtoi(fields[2], &part.first_row) &&
           absl::SimpleAtoi(fields[3], &part.end_row);
      have_part = ok;
    } else if (fields[0] == "samples" && fields.size() == 4) {
      ok = ParseFile(fields, &part.samples);
      have_samples = ok;
    } else if (fields[0] == "shard" && fields.size() == 6) {
      ShardEntry shard;
      ok = ParseFile(fields, &shard.file) && absl::SimpleAtoi(fields[4], &shard.row_begin) &&
           absl::SimpleAtoi(fields[5], &shard.row_end);
      part.shards.push_back(std::move(shard));
    }
    if (!ok) {
      return absl::DataLossError(
          absl::StrCat(source, " line ", line_number, " is malformed: '", line, "'"));
    }
  }
  if (!have_part || !have_samples) {
    return absl::DataLossError(absl::StrCat(source, " lacks its part or samples line"));
  }
  return part;
}

}  // namespace tda
