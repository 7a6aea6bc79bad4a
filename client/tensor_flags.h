// The flags that describe a tensors corpus (--data FEATURES.npy --labels
// LABELS.npy and its optional sidecars, data/tensor_corpus.h), shared by every
// command that trains or evaluates a classifier on one: tda train and tda eval
// loo | lds.
#pragma once

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/flags.h"
#include "data/tensor_corpus.h"

namespace tda {

// Adds --labels, --samples, --class-names, --test-features, --test-labels,
// --test-samples and
// --held-out-fraction (not --data itself: its help differs per command).
void AddTensorCorpusFlags(FlagParser *flags);

// The files of those flags, made absolute (a model or an index must find them
// from anywhere); nullopt when neither --data nor --labels is given.
// kInvalidArgument for an incomplete set (see TensorCorpusSpec).
[[nodiscard]] absl::StatusOr<std::optional<TensorCorpusFiles>> TensorCorpusFromFlags(
    const FlagParser &flags);

// `path` absolute and normalised; "" stays "".
std::string AbsoluteCorpusPath(const std::string &path);

}  // namespace tda
