#include "client/jsonl_flags.h"

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/tensor_flags.h"
#include "common/status_macros.h"

namespace tda {

void AddJsonlFlags(FlagParser* flags) {
  const JsonlOptions defaults;
  flags->AddString("text-field", "NAME", defaults.text_field, "JSONL: the document's field");
  flags->AddString("prompt-field", "NAME", "",
                   "JSONL instruction data: the prompt's field (with --completion-field; only "
                   "the completion carries loss)");
  flags->AddString("completion-field", "NAME", "",
                   "JSONL instruction data: the completion's field");
  flags->AddString("id-field", "NAME", defaults.id_field,
                   "JSONL: the document id's field (missing: <file>:<line>)");
  flags->AddString("source-field", "NAME", defaults.source_field,
                   "JSONL: the data source's field (missing: the file's name)");
  flags->AddBool("source-from-file", "JSONL: every document's source is its file's name");
  flags->AddBool("skip-bad-lines",
                 "JSONL: skip malformed lines (and count them) instead of failing");
}

absl::StatusOr<JsonlOptions> JsonlOptionsFromFlags(const FlagParser& flags) {
  JsonlOptions options;
  for (absl::string_view path : absl::StrSplit(flags.GetString("data"), ',', absl::SkipEmpty())) {
    options.paths.push_back(AbsoluteCorpusPath(std::string(path)));
  }
  if (options.paths.empty()) return absl::InvalidArgumentError("--data names no files");
  options.text_field = flags.GetString("text-field");
  options.prompt_field = flags.GetString("prompt-field");
  options.completion_field = flags.GetString("completion-field");
  options.id_field = flags.GetString("id-field");
  options.source_field = flags.GetString("source-field");
  options.source_from_file = flags.GetBool("source-from-file");
  options.skip_bad_lines = flags.GetBool("skip-bad-lines");
  if (options.prompt_field.empty() != options.completion_field.empty()) {
    return absl::InvalidArgumentError(
        "give both --prompt-field and --completion-field, or neither");
  }
  return options;
}

absl::Status UseJsonlCorpus(const JsonlOptions& options, TrainRecipe* recipe) {
  recipe->dataset = "jsonl";
  recipe->data_dir = absl::StrJoin(options.paths, ",");
  recipe->jsonl = options;
  recipe->jsonl.paths.clear();
  ASSIGN_OR_RETURN(recipe->corpus_hash, JsonlCorpusHash(options.paths));
  return absl::OkStatus();
}

}  // namespace tda
