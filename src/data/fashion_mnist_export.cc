#include "data/fashion_mnist_export.h"

#include <filesystem>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/atomic_file.h"
#include "common/npy.h"
#include "common/status_macros.h"
#include "data/fashion_mnist.h"

namespace tda {
namespace {

absl::Status WriteSplit(const Dataset& data, const std::string& features,
                        const std::string& labels, const std::string& samples) {
  RETURN_IF_ERROR(WriteNpyF32(features, {data.size(), data.feature_dim}, data.features.data()));
  const std::vector<int64_t> wide(data.labels.begin(), data.labels.end());
  RETURN_IF_ERROR(WriteNpyI64(labels, {data.size()}, wide.data()));
  std::string tsv = "id\tsource\n";
  for (int64_t i = 0; i < data.size(); ++i) absl::StrAppend(&tsv, data.ids[i], "\t", data.sources[i], "\n");
  return WriteFileAtomically(samples, tsv);
}

}  // namespace

absl::StatusOr<TensorCorpusFiles> ExportFashionMnistNpy(const std::string& idx_dir,
                                                        const std::string& out_dir,
                                                        bool overwrite) {
  TensorCorpusFiles files;
  files.features = out_dir + "/train-features.npy";
  files.labels = out_dir + "/train-labels.npy";
  files.samples = out_dir + "/train-samples.tsv";
  files.class_names = out_dir + "/class-names.txt";
  files.test_features = out_dir + "/test-features.npy";
  files.test_labels = out_dir + "/test-labels.npy";
  files.test_samples = out_dir + "/test-samples.tsv";
  const std::vector<const std::string*> all = {
      &files.features,      &files.labels,      &files.samples,     &files.class_names,
      &files.test_features, &files.test_labels, &files.test_samples};
  if (!overwrite) {
    for (const std::string* path : all) {
      if (std::filesystem::exists(*path)) {
        return absl::AlreadyExistsError(
            absl::StrCat(*path, " exists; nothing written (pass --overwrite to replace it)"));
      }
    }
  }
  // Both splits are read before anything is written, so a bad IDX directory writes nothing.
  ASSIGN_OR_RETURN(Dataset train, LoadFashionMnist(idx_dir, Split::kTrain));
  ASSIGN_OR_RETURN(Dataset test, LoadFashionMnist(idx_dir, Split::kTest));
  RETURN_IF_ERROR(MakeDirectories(out_dir));
  RETURN_IF_ERROR(WriteSplit(train, files.features, files.labels, files.samples));
  RETURN_IF_ERROR(WriteSplit(test, files.test_features, files.test_labels, files.test_samples));
  RETURN_IF_ERROR(WriteFileAtomically(
      files.class_names, absl::StrCat(absl::StrJoin(FashionMnistClassNames(), "\n"), "\n")));
  return files;
}

}  // namespace tda
