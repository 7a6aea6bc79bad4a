// The flags that describe a JSONL corpus (--data FILE[,FILE...] and its field names), shared by
// every command that reads one: tda train --model-kind gpt and tda data check.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "common/flags.h"
#include "data/jsonl_corpus.h"
#include "model/model_config.h"

namespace tda {

// Adds --text-field, --prompt-field, --completion-field, --id-field, --source-field,
// --source-from-file and --skip-bad-lines (not --data itself: its help differs per command).
void AddJsonlFlags(FlagParser* flags);

// The corpus of --data and the field flags, paths made absolute (a model or an index must find
// them from anywhere). kInvalidArgument for an empty --data or inconsistent field flags.
[[nodiscard]] absl::StatusOr<JsonlOptions> JsonlOptionsFromFlags(const FlagParser& flags);

// Points `recipe` at that corpus: dataset "jsonl", data_dir the comma-separated files, the
// field options, and the files' content hash (so later uses notice a changed corpus).
[[nodiscard]] absl::Status UseJsonlCorpus(const JsonlOptions& options, TrainRecipe* recipe);

}  // namespace tda
