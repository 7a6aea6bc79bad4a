// The projection an index's rows were written with, rebuilt from its manifest: the seeded
// Kronecker projection and, when the index was built with --adam-correction, the Adam
// correction fitted from the optimizer state saved with the index's model
// (DIR/model/optimizer_state.safetensors). Shared by queries (Attributor) and appends
// (index_update.h) so appended rows and queries are corrected as the build corrected the rows.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grad/projection.h"
#include "index/manifest.h"
#include "model/model.h"

namespace tda {

// kDataLoss when the projection's size differs from manifest.dim or the optimizer state is
// missing or damaged (an index that records a correction must hold its state).
[[nodiscard]] absl::StatusOr<std::unique_ptr<Projection>> IndexProjection(
    const std::string& index_dir, const Manifest& manifest, const Model& model);

}  // namespace tda
