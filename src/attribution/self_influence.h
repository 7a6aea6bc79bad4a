// Self-influence of every training row: s_i = g_i^T (H + lambda I)^-1 g_i, the score of a sample
// against itself. High self-influence marks samples the model fits by memorising them (outliers,
// mislabelled images, duplicated or unusual documents): removing one changes its own loss most.
#pragma once

#include <Eigen/Core>

#include "absl/status/statusor.h"
#include "attribution/document_totals.h"
#include "common/progress.h"
#include "curvature/preconditioner.h"
#include "index/gradient_index.h"

namespace tda {

// One value per index row (index order), from the stored rows and a preconditioner of the
// index's space (Attributor::MakePreconditioner). Rows are preconditioned in blocks of
// `block_rows`, so memory stays O(block_rows x dim). kInvalidArgument when the preconditioner's
// dimension does not match the index.
[[nodiscard]] absl::StatusOr<Eigen::VectorXd> SelfInfluence(const GradientIndex& index,
                                              const Preconditioner& preconditioner,
                                              const ProgressFn& progress = {},
                                              int64_t block_rows = 2048);

// Self-influence of every document of `documents` (their order): g_d^T (H + lambda I)^-1 g_d
// where g_d is the sum of the document's live rows. A chunked document's loss is the sum of its
// chunks' losses (each position counted once), and the stored rows are linear projections of
// their gradients, so g_d is the document's projected gradient and the value is exact in the
// index's space (the sum of its chunks' self-influences is not: it misses the cross terms). A
// document of one row gets that row's value.
[[nodiscard]] absl::StatusOr<Eigen::VectorXd> DocumentSelfInfluence(const GradientIndex& index,
                                                      const IndexDocuments& documents,
                                                      const Preconditioner& preconditioner,
                                                      const ProgressFn& progress = {},
                                                      int64_t block_documents = 2048);

}  // namespace tda
