// Fashion-MNIST (IDX) written as a tensors corpus (tensor_corpus.h) in `out_dir`:
// train-features.npy (float32, (60000, 784), the scaled pixels exactly as LoadFashionMnist
// gives them), train-labels.npy (int64), test-features.npy, test-labels.npy,
// train-samples.tsv and test-samples.tsv (header "id\tsource", the IDX ids and sources) and
// class-names.txt (one name per line). A corpus read from these files has the same rows, bit
// for bit, as the IDX kind.
//
// Each file is written atomically; when any of them exists already nothing is written and the
// result is kAlreadyExists, unless `overwrite`.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "data/tensor_corpus.h"

namespace tda {

// The corpus written (its files' paths); `idx_dir` holds the IDX files.
[[nodiscard]] absl::StatusOr<TensorCorpusFiles> ExportFashionMnistNpy(const std::string& idx_dir,
                                                                      const std::string& out_dir,
                                                                      bool overwrite);

}  // namespace tda
