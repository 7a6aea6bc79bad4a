// tda index delete / tda index append: change an index in place (src/index/index_update.h).
#include <fstream>
#include <iostream>
#include <numeric>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "client/commands.h"
#include "common/flags.h"
#include "client/json_string.h"
#include "client/progress_bar.h"
#include "data/fashion_mnist.h"
#include "index/gradient_index.h"
#include "index/index_update.h"

namespace tda {
namespace {

// "ok" line / JSON object describing the index after the change.
int Report(const std::string& dir, const std::string& what, bool json) {
  absl::StatusOr<std::unique_ptr<GradientIndex>> index =
      GradientIndex::Open(dir, GradientIndex::Verify::kSizes);
  if (!index.ok()) return RuntimeError(index.status());
  const GradientIndex& i = **index;
  if (json) {
    std::cout << absl::StrFormat(
        "{\"index\": %s, \"rows\": %d, \"deleted_rows\": %d, \"generation\": %d, "
        "\"factor_examples\": %d}\n",
        JsonString(dir), i.rows(), i.deleted_rows(), i.manifest().generation,
        i.manifest().factor_examples);
  } else {
    std::cout << absl::StrFormat(
        "%s: index %s now has %d rows, %d of them deleted (generation %d; curvature factors "
        "fitted on %d samples)\n",
        what, dir, i.rows(), i.deleted_rows(), i.manifest().generation,
        i.manifest().factor_examples);
  }
  return 0;
}

}  // namespace

int RunIndexDelete(const Args& args) {
  FlagParser flags(
      "tda index delete", "--index DIR (--ids ID,ID,... | --ids-file FILE) [--json]",
      "Marks training samples deleted: they keep their row numbers but never appear in a top-k\n"
      "or a per-source total again, and score NaN in --scores-out. Writes a tombstone file and\n"
      "a new manifest atomically (the index is then format version 2). Deleting an id twice\n"
      "is harmless; an unknown id changes nothing and is an error.");
  flags.AddRequiredString("index", "DIR", "index directory");
  flags.AddString("ids", "ID,ID,...", "", "comma-separated sample ids to delete");
  flags.AddString("ids-file", "FILE", "", "file with one sample id per line");
  flags.AddBool("json", "print the index's rows and deleted rows afterwards as JSON");
  if (std::optional<int> exit = flags.ParseOrExit(args)) return *exit;
  std::vector<std::string> ids;
  for (absl::string_view id : absl::StrSplit(flags.GetString("ids"), ',', absl::SkipEmpty())) {
    ids.emplace_back(absl::StripAsciiWhitespace(id));
  }
  if (const std::string file = flags.GetString("ids-file"); !file.empty()) {
    std::ifstream in(file);
    if (!in) return flags.UsageError("cannot read --ids-file " + file);
    for (std::string line; std::getline(in, line);) {
      absl::string_view id = absl::StripAsciiWhitespace(line);
      if (!id.empty()) ids.emplace_back(id);
    }
  }
  if (ids.empty()) return flags.UsageError("give the ids to delete with --ids or --ids-file");
  const std::string dir = flags.GetString("index");
  if (absl::Status s = DeleteFromIndex(dir, ids); !s.ok()) return RuntimeError(s);
  return Report(dir, absl::StrCat("deleted ", ids.size(), " ids"), flags.GetBool("json"));
}

int RunIndexAppend(const Args& args) {
  FlagParser flags(
      "tda index append", "--index DIR --first N --count N [--split train|test] [flags]",
      "Adds rows for new Fashion-MNIST samples without rebuilding: their gradients are taken\n"
      "with the index's own model and projection (exactly what a full build would store), in\n"
      "new shards, with a new manifest. The curvature factors stay as fitted (the manifest\n"
      "records on how many samples). New data for an index built with --train-size N is\n"
      "training images N, N+1, ...; test images can be added as a second data source.");
  flags.AddRequiredString("index", "DIR", "index directory");
  flags.AddString("split", "train|test", "train", "which Fashion-MNIST split to take samples from");
  flags.AddInt("first", "N", -1, "first sample of the split (default: train: after the index's rows)");
  flags.AddInt("count", "N", 0, "number of samples to append");
  flags.AddString("data-dir", "DIR", "", "Fashion-MNIST IDX files (default: the index's)");
  flags.AddInt("batch-size", "N", 512, "images per gradient batch");
  flags.AddBool("json", "print the index's rows afterwards as JSON");
  if (std::optional<int> exit = flags.ParseOrExit(args)) return *exit;
  const std::string dir = flags.GetString("index");
  const std::string split_name = flags.GetString("split");
  if (split_name != "train" && split_name != "test") {
    return flags.UsageError("--split must be train or test, got '" + split_name + "'");
  }
  if (flags.GetInt("count") <= 0) return flags.UsageError("--count must be > 0");
  if (flags.GetInt("batch-size") <= 0) return flags.UsageError("--batch-size must be > 0");
  absl::StatusOr<std::unique_ptr<GradientIndex>> index =
      GradientIndex::Open(dir, GradientIndex::Verify::kSizes);
  if (!index.ok()) return RuntimeError(index.status());
  std::string data_dir = flags.GetString("data-dir");
  if (data_dir.empty()) data_dir = (*index)->manifest().data_dir;
  const Split split = split_name == "train" ? Split::kTrain : Split::kTest;
  int64_t first = flags.GetInt("first");
  if (first < 0) first = split == Split::kTrain ? (*index)->rows() : 0;
  index->reset();
  absl::StatusOr<Dataset> data = LoadFashionMnist(data_dir, split, first + flags.GetInt("count"));
  if (!data.ok()) return RuntimeError(data.status());
  if (data->size() < first + flags.GetInt("count")) {
    return RuntimeError(absl::InvalidArgumentError(
        absl::StrCat("fashion-mnist/", split_name, " has ", data->size(), " samples; cannot take ",
                     flags.GetInt("count"), " from ", first)));
  }
  std::vector<int64_t> rows(static_cast<size_t>(flags.GetInt("count")));
  std::iota(rows.begin(), rows.end(), first);
  const Dataset samples = data->Select(rows);
  absl::Status status;
  {
    ProgressBar bar;
    status = AppendToIndex(dir, samples, flags.GetInt("batch-size"), bar.Callback());
  }
  if (!status.ok()) return RuntimeError(status);
  return Report(dir, absl::StrCat("appended ", samples.size(), " samples"), flags.GetBool("json"));
}

}  // namespace tda
