// tda data: corpora outside an index. `tda data export fortunes` writes the Debian fortunes as
// a JSONL corpus (the format data teams bring); `tda data export fashion-mnist` writes
// Fashion-MNIST as a tensors corpus (.npy arrays, data/fashion_mnist_export.h); `tda data check` reads a JSONL corpus the way
// training and index builds will, and reports what it holds and what is wrong with it.
#include <filesystem>
#include <iostream>
#include <map>
#include <string>

#include "absl/strings/str_format.h"
#include "client/commands.h"
#include "client/json_string.h"
#include "client/jsonl_flags.h"
#include "common/flags.h"
#include "data/fashion_mnist_export.h"
#include "data/fortunes.h"
#include "data/jsonl_corpus.h"

namespace tda {
namespace {

int RunDataExportFashionMnist(const Args& args) {
  FlagParser flags("tda data export fashion-mnist", "--out DIR [--data-dir DIR]",
                   "Writes Fashion-MNIST as a tensors corpus in DIR: train-features.npy,\n"
                   "train-labels.npy, test-features.npy, test-labels.npy (float32 pixels in\n"
                   "[0, 1], int64 labels), train-samples.tsv and test-samples.tsv (id, source)\n"
                   "and class-names.txt. A model trained on them (tda train --data ... --labels\n"
                   "...) sees the same rows as one trained on the IDX files. Each file is\n"
                   "written atomically; nothing is written if any exists, unless --overwrite.");
  flags.AddRequiredString("out", "DIR", "directory to write");
  flags.AddString("data-dir", "DIR", kFashionMnistDefaultDir, "Fashion-MNIST IDX files");
  flags.AddBool("overwrite", "replace existing files");
  if (std::optional<int> exit = flags.ParseOrExit(args)) return *exit;
  absl::StatusOr<TensorCorpusFiles> files = ExportFashionMnistNpy(
      flags.GetString("data-dir"), flags.GetString("out"), flags.GetBool("overwrite"));
  if (absl::IsAlreadyExists(files.status())) {
    return flags.UsageError(std::string(files.status().message()));
  }
  if (!files.ok()) return RuntimeError(files.status());
  std::cout << absl::StrFormat(
      "wrote %s, %s, %s, %s, %s, %s and %s\ntrain with: tda train --data %s --labels %s "
      "--samples %s --class-names %s --test-features %s --test-labels %s --test-samples %s "
      "--out MODEL\n",
      files->features, files->labels, files->samples, files->class_names, files->test_features,
      files->test_labels, files->test_samples, files->features, files->labels, files->samples,
      files->class_names, files->test_features, files->test_labels, files->test_samples);
  return 0;
}

int RunDataExport(const Args& args) {
  if (!args.empty() && args[0] == "fashion-mnist") {
    return RunDataExportFashionMnist(Args(args.begin() + 1, args.end()));
  }
  FlagParser flags("tda data export fortunes", "--out FILE.jsonl [--data-dir DIR]",
                   "Writes every fortune (training and held-out) as one JSONL line\n"
                   "{\"id\", \"source\", \"text\"}: ids fortunes/<category>/<n>, sources the\n"
                   "categories. A model trained on the file (tda train --model-kind gpt --data\n"
                   "FILE) sees the same rows as one trained on the fortunes directly. The file is\n"
                   "written atomically; an existing file is not replaced unless --overwrite.");
  flags.AddRequiredString("out", "FILE", "JSONL file to write");
  flags.AddString("data-dir", "DIR", kFortunesDefaultDir, "the fortunes corpus");
  flags.AddBool("overwrite", "replace FILE if it exists");
  if (args.empty() || args[0] != "fortunes") {
    if (!args.empty() && (args[0] == "--help" || args[0] == "-h")) {
      std::cout << flags.Help();
      return 0;
    }
    return flags.UsageError(
        "'tda data export' exports the fortunes or Fashion-MNIST: tda data export fortunes|fashion-mnist");
  }
  if (std::optional<int> exit = flags.ParseOrExit(Args(args.begin() + 1, args.end()))) {
    return *exit;
  }
  const std::string out = flags.GetString("out");
  if (std::filesystem::exists(out) && !flags.GetBool("overwrite")) {
    return flags.UsageError(out + " exists; pass --overwrite to replace it");
  }
  absl::StatusOr<std::vector<TextDocument>> docs = ReadFortunes(flags.GetString("data-dir"));
  if (!docs.ok()) return RuntimeError(docs.status());
  if (absl::Status s = WriteJsonl(*docs, out); !s.ok()) return RuntimeError(s);
  std::cout << absl::StrFormat("wrote %d documents to %s (%d bytes)\n", docs->size(), out,
                               std::filesystem::file_size(out));
  return 0;
}

int RunDataCheck(const Args& args) {
  FlagParser flags("tda data check", "--data FILE[,FILE...] [field flags] [--json]",
                   "Reads a JSONL corpus (.jsonl, .jsonl.gz, .jsonl.zst) as training and index\n"
                   "builds will, and reports its documents per source, its longest document, how\n"
                   "many exceed a context, invalid UTF-8 bytes (kept as bytes) and skipped lines.\n"
                   "Exits 1 with the file and line of the first bad line (see --skip-bad-lines).");
  flags.AddRequiredString("data", "FILE[,FILE...]", "the corpus files");
  AddJsonlFlags(&flags);
  flags.AddInt("context", "N", 256, "count the documents longer than N bytes");
  flags.AddBool("json", "print the report as JSON");
  if (std::optional<int> exit = flags.ParseOrExit(args)) return *exit;
  absl::StatusOr<JsonlOptions> options = JsonlOptionsFromFlags(flags);
  if (!options.ok()) return flags.UsageError(std::string(options.status().message()));
  const int64_t context = flags.GetInt("context");
  std::map<std::string, int64_t> per_source;
  int64_t bytes = 0, longest = 0, over_context = 0;
  std::string longest_id;
  JsonlStats stats;
  absl::Status status = ReadJsonlDocuments(
      *options,
      [&](TextDocument&& doc) {
        const int64_t size = static_cast<int64_t>(doc.text.size());
        ++per_source[doc.source];
        bytes += size;
        if (size > context) ++over_context;
        if (size > longest) longest = size, longest_id = doc.id;
        return absl::OkStatus();
      },
      &stats);
  if (!status.ok()) return RuntimeError(status);
  if (flags.GetBool("json")) {
    std::cout << "{\"documents\": " << stats.documents << ", \"bytes\": " << bytes
              << ", \"longest\": {\"id\": " << JsonString(longest_id) << ", \"bytes\": " << longest
              << "}, \"over_context\": " << over_context
              << ", \"invalid_utf8_bytes\": " << stats.invalid_utf8_bytes
              << ", \"skipped_lines\": " << stats.skipped_lines << ", \"sources\": {";
    bool first = true;
    for (const auto& [source, count] : per_source) {
      std::cout << (first ? "" : ", ") << JsonString(source) << ": " << count;
      first = false;
    }
    std::cout << "}}\n";
    return 0;
  }
  std::cout << absl::StrFormat(
      "%d documents, %d bytes, %d sources; longest %s (%d bytes); %d longer than %d bytes\n",
      stats.documents, bytes, per_source.size(), longest_id, longest, over_context, context);
  if (stats.invalid_utf8_bytes > 0) {
    std::cout << absl::StrFormat("%d bytes in %d documents are not UTF-8 (kept as bytes)\n",
                                 stats.invalid_utf8_bytes, stats.documents_with_invalid_utf8);
  }
  if (stats.skipped_lines > 0) {
    std::cout << absl::StrFormat("%d lines skipped:\n", stats.skipped_lines);
    for (const std::string& reason : stats.skipped) std::cout << "  " << reason << "\n";
  }
  std::cout << absl::StrFormat("  %-32s %10s\n", "source", "documents");
  for (const auto& [source, count] : per_source) {
    std::cout << absl::StrFormat("  %-32s %10d\n", source, count);
  }
  return 0;
}

}  // namespace

int RunData(const Args& args) {
  const std::string usage =
      "Usage: tda data export fortunes --out FILE.jsonl\n"
      "       tda data export fashion-mnist --out DIR\n"
      "       tda data check --data FILE[,FILE...] [--json]\n";
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::cout << usage;
    return args.empty() ? 2 : 0;
  }
  const Args rest(args.begin() + 1, args.end());
  if (args[0] == "export") return RunDataExport(rest);
  if (args[0] == "check") return RunDataCheck(rest);
  std::cerr << "tda: error: unknown 'tda data' command '" << args[0] << "'\n" << usage;
  return 2;
}

}  // namespace tda
