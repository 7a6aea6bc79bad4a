#include "index/index_projection.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace tda {

absl::StatusOr<std::unique_ptr<Projection>> IndexProjection(const std::string& index_dir,
                                                            const Manifest& manifest,
                                                            const Model& model) {
  ASSIGN_OR_RETURN(const AdamCorrectionKind kind,
                   ParseAdamCorrectionKind(manifest.adam_correction, index_dir + "/manifest"));
  absl::StatusOr<std::shared_ptr<const AdamCorrection>> correction =
      LoadAdamCorrection(index_dir + "/model", model, kind);
  if (!correction.ok()) {
    return absl::DataLossError(absl::StrCat("index ", index_dir, " records an Adam correction (",
                                            manifest.adam_correction, ") but ",
                                            correction.status().message()));
  }
  auto projection = std::make_unique<Projection>(model.layout(), manifest.projection_dim_per_side,
                                                 manifest.projection_seed, *correction);
  if (projection->output_dim() != manifest.dim) {
    return absl::DataLossError(absl::StrCat("index ", index_dir, ": projection gives ",
                                            projection->output_dim(), " dimensions, manifest says ",
                                            manifest.dim));
  }
  return projection;
}

}  // namespace tda
