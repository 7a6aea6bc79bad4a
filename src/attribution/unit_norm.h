// TrackStar's unit normalisation (Chang et al. 2024): the score of training row i for query q
// becomes
//     q^T P g_i / (|q| |g_i|)
// in the index's projected space, q the query's projected gradient (Adam-corrected when the
// query asks for it), P the method's preconditioner (identity for gradient-dot, which makes it
// the cosine) and g_i the stored (corrected, projected) row. The query is normalised before it
// is preconditioned; the rows' norms divide their scores during the scan
// (ScanOptions::row_scales), so the top-k is ranked by the normalised score.
//
// The rows' norms are computed from the stored rows, once per opened index (one pass over it,
// the cost of one query's scan, 4 bytes per row), rather than stored at build time: no file
// to keep in step through appends, deletes and splits, and no index format change, for one
// extra pass per served index version. A zero row scores 0.
#pragma once

#include <Eigen/Core>
#include <vector>

#include "index/gradient_index.h"

namespace tda {

// 1 / |row| for every row of `index` (index order), 0 for a zero row.
std::vector<float> InverseRowNorms(const GradientIndex& index);

// Each column of `queries` divided by its Euclidean norm (a zero column stays zero).
void NormaliseColumns(Eigen::MatrixXd* queries);

}  // namespace tda
