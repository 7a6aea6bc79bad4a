#include "client/tensor_flags.h"

#include <filesystem>

#include "common/status_macros.h"

namespace tda {

void AddTensorCorpusFlags(FlagParser *flags) {
  flags->AddString("labels", "LABELS.npy", "", "with --data: labels (N,) int64/int32/uint8");
  flags->AddString("samples", "FILE", "",
                   "with --data: ids and sources (TSV with header, or JSONL)");
  flags->AddString("class-names", "FILE", "", "with --data: one class name per line (or .json)");
  flags->AddString("test-features", "FILE.npy", "",
                   "with --data: held-out features (without: hold out by id hash)");
  flags->AddString("test-labels", "FILE.npy", "", "with --test-features: held-out labels");
  flags->AddString("test-samples", "FILE", "", "with --test-features: held-out ids and sources");
  flags->AddDouble("held-out-fraction", "X", 0.05,
                   "with --data and no --test-features: fraction held out by id hash");
}

std::string AbsoluteCorpusPath(const std::string &path) {
  return path.empty() ? path : std::filesystem::absolute(path).lexically_normal().string();
}

absl::StatusOr<std::optional<TensorCorpusFiles>> TensorCorpusFromFlags(const FlagParser &flags) {
  if (flags.GetString("data").empty() && flags.GetString("labels").empty()) return std::nullopt;
  auto file = [&flags](const char *flag) { return AbsoluteCorpusPath(flags.GetString(flag)); };
  TensorCorpusFiles files;
  files.features = file("data");
  files.labels = file("labels");
  files.samples = file("samples");
  files.class_names = file("class-names");
  files.test_features = file("test-features");
  files.test_labels = file("test-labels");
  files.test_samples = file("test-samples");
  RETURN_IF_ERROR(TensorCorpusSpec(files).status());  // complete and encodable
  const double held_out = flags.GetDouble("held-out-fraction");
  if (!(held_out >= 0 && held_out < 1)) {
    return absl::InvalidArgumentError("--held-out-fraction must be in [0, 1)");
  }
  return files;
}

}  // namespace tda
