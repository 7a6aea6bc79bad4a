#include "attribution/unit_norm.h"

#include <cmath>

namespace tda {

std::vector<float> InverseRowNorms(const GradientIndex& index) {
  std::vector<float> inverse(static_cast<size_t>(index.rows()), 0.0f);
#pragma omp parallel
  {
    std::vector<float> row(static_cast<size_t>(index.dim()));
#pragma omp for schedule(static)
    for (int64_t r = 0; r < index.rows(); ++r) {
      if (!index.CopyRow(r, row.data())) continue;
      double sum = 0;
      for (float x : row) sum += static_cast<double>(x) * x;
      if (sum > 0) inverse[static_cast<size_t>(r)] = static_cast<float>(1.0 / std::sqrt(sum));
    }
  }
  return inverse;
}

void NormaliseColumns(Eigen::MatrixXd* queries) {
  for (Eigen::Index q = 0; q < queries->cols(); ++q) {
    const double norm = queries->col(q).norm();
    if (norm > 0) queries->col(q) /= norm;
  }
}

}  // namespace tda
