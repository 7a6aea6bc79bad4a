// The ANN flags shared by 'tda index ann' and 'tda index build --ann', and the build itself
// with a progress bar and a one-line summary (index/ann_index.h).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "common/flags.h"
#include "index/ann_index.h"
#include "index/gradient_index.h"

namespace tda {

// --nlist, --m, --pq-bits, --hnsw-m, --train-rows (the kind comes from the caller's flag).
void AddAnnParameterFlags(FlagParser& flags);
// kInvalidArgument for a negative value or an unknown kind.
[[nodiscard]] absl::StatusOr<AnnParameters> AnnParametersFromFlags(const FlagParser& flags,
                                                                   const std::string& kind);

// Builds the ANN of `index` with a progress bar on stderr.
[[nodiscard]] absl::StatusOr<AnnInfo> BuildAnnWithProgress(const GradientIndex& index,
                                                           const AnnParameters& parameters,
                                                           bool overwrite);

// "ANN ivf-flat (nlist 980) written to DIR/ann.faiss: 60000 rows x 2112 dims, 490.3 MiB".
std::string AnnSummary(const std::string& index_dir, const AnnInfo& info);

}  // namespace tda
