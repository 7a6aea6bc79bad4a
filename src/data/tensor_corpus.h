// `tensors` corpora: classifier data as NumPy arrays, the form a data team's pipeline emits.
//
//   features      .npy, shape (N, D), C order, float32, float64 or uint8 (values kept as
//                 given, converted to float32; uint8 is NOT scaled)
//   labels        .npy, shape (N,), int64, int32 or uint8
//   samples       optional sidecar, one record per row in row order: a TSV whose first line is
//                 a header naming the columns (`id` required, `source` optional, others
//                 ignored), or JSONL (.jsonl) objects {"id": ..., "source": ...}
//   class names   optional: one name per line, or a .json file {"class_names": [...]}
// Defaults: ids "<features file stem>/<i>", sources the features file stem ("train-features"
// for train-features.npy), class names "0".."K-1" with K = max label + 1.
//
// Held-out split, one rule: with test files (test-features + test-labels [+ test-samples]) the
// training split is every row of the main files and the held-out split is the test files' rows;
// without them a row is held out when IsHeldOut(id, 0, held_out_fraction) (text_document.h),
// as for the text kinds.
//
// Recipe encoding (TrainRecipe.dataset "tensors", data_dir): comma-separated, the features
// and the labels files first, then optional key=path entries:
//   features.npy,labels.npy[,samples=F][,class-names=F][,test-features=F,test-labels=F[,test-samples=F]]
// Paths may not contain ','.
//
// Memory: the .npy files are memory-mapped (NpyFile) and each selected row is converted once,
// straight into the Dataset's vectors; no other copy of the arrays is made.
//
// Errors (kInvalidArgument unless a file is missing: kNotFound) name the file and, where one
// applies, the row: wrong dtype, rank or order; features and labels of different N; a label
// < 0 or >= the number of class names; a NaN or infinite feature (row and column); a sidecar
// with the wrong number of records, a record without an id, or duplicate ids (both rows).
// Thread-compatible; pure apart from reading the files.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "data/dataset.h"
#include "data/fashion_mnist.h"

namespace tda {

inline constexpr char kTensorsDataset[] = "tensors";

struct TensorCorpusFiles {
  std::string features;
  std::string labels;
  std::string samples;      // optional
  std::string class_names;  // optional
  std::string test_features;
  std::string test_labels;
  std::string test_samples;  // optional, with test_features
};

// data_dir <-> files, as documented above. Parse: kInvalidArgument for a missing features or
// labels file, an unknown key, a key given twice, a path containing ',', or only one of
// test-features / test-labels.
[[nodiscard]] absl::StatusOr<TensorCorpusFiles> ParseTensorCorpusSpec(const std::string& spec);
[[nodiscard]] absl::StatusOr<std::string> TensorCorpusSpec(const TensorCorpusFiles& files);

// The training (Split::kTrain: the first `limit` training rows, all if <= 0) or held-out rows
// of the corpus, as a classification data set named "<features stem>/train" or ".../held-out".
[[nodiscard]] absl::StatusOr<Dataset> LoadTensorCorpus(const TensorCorpusFiles& files,
                                                       Split split, int64_t limit,
                                                       double held_out_fraction);

}  // namespace tda
