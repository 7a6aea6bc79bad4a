// tda index split: cut an index into shard indexes for sharded serving (src/index/index_split.h).
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/commands.h"
#include "client/json_string.h"
#include "client/progress_bar.h"
#include "common/flags.h"
#include "index/index_split.h"

namespace tda {

int RunIndexSplit(const Args& args) {
  FlagParser flags(
      "tda index split", "[--index] DIR --shards K --out DIR [--json]",
      "Cuts a gradient index into K shard indexes DIR/shard-0 .. shard-(K-1) by contiguous row\n"
      "ranges, each an ordinary index (model, curvature factors, its rows and their samples,\n"
      "its own checksummed manifest, recording its row range in the whole) that an ordinary\n"
      "'tda-server --index DIR/shard-i' serves, and DIR/shardmap.json, a template for\n"
      "'tda-server --router DIR/shardmap.json' (fill in the shard servers' addresses).\n"
      "The index is verified first; --out must be a new or empty directory.");
  flags.AddRequiredString("index", "DIR", "index to split (also the first positional argument)");
  flags.AddInt("shards", "K", 0, "number of shards, in [1, rows]");
  flags.AddRequiredString("out", "DIR", "new or empty directory for the shards and shard map");
  flags.AddBool("json", "print {\"shards\": [...], \"total_rows\", \"shard_map\"} as JSON");
  flags.AddNote("Example: tda index split /data/idx --shards 4 --out /data/idx-shards");
  Args rewritten = args;
  if (!rewritten.empty() && !rewritten[0].empty() && rewritten[0][0] != '-') {
    rewritten.insert(rewritten.begin(), "--index");
  }
  if (std::optional<int> exit = flags.ParseOrExit(rewritten)) return *exit;
  if (!flags.IsSet("shards")) return flags.UsageError("give the number of shards with --shards K");
  absl::StatusOr<SplitResult> result;
  {
    ProgressBar bar;
    result = SplitIndex(flags.GetString("index"), flags.GetInt("shards"), flags.GetString("out"),
                        bar.Callback());
  }
  if (!result.ok()) return RuntimeError(result.status());
  if (flags.GetBool("json")) {
    std::vector<std::string> shards;
    for (const SplitShard& s : result->shards) {
      shards.push_back(absl::StrCat("{\"dir\": ", JsonString(s.dir),
                                    ", \"first_row\": ", s.first_row, ", \"rows\": ", s.rows, "}"));
    }
    std::cout << "{\"shards\": [" << absl::StrJoin(shards, ", ")
              << "], \"total_rows\": " << result->total_rows
              << ", \"parent_manifest_xxh3\": " << JsonString(result->parent_manifest_xxh3)
              << ", \"shard_map\": " << JsonString(result->shard_map_path) << "}\n";
    return 0;
  }
  std::cout << absl::StrFormat("%-40s %12s %12s\n", "SHARD", "FIRST ROW", "ROWS");
  for (const SplitShard& s : result->shards) {
    std::cout << absl::StrFormat("%-40s %12d %12d\n", s.dir, s.first_row, s.rows);
  }
  std::cout << absl::StrFormat(
      "%d rows in %d shards; shard map template: %s (set each shard's address, then run "
      "tda-server --router %s)\n",
      result->total_rows, result->shards.size(), result->shard_map_path, result->shard_map_path);
  return 0;
}

}  // namespace tda
