#include "common/statistics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace tda {
namespace {

Eigen::VectorXd ToEigen(const std::vector<double>& v) {
  return Eigen::Map<const Eigen::VectorXd>(v.data(), static_cast<Eigen::Index>(v.size()));
}

}  // namespace

double Pearson(const Eigen::VectorXd& x, const Eigen::VectorXd& y) {
  if (x.size() != y.size() || x.size() < 2) return 0.0;
  const Eigen::ArrayXd dx = x.array() - x.mean(), dy = y.array() - y.mean();
  const double denom = std::sqrt(dx.square().sum() * dy.square().sum());
  return denom > 0 && std::isfinite(denom) ? (dx * dy).sum() / denom : 0.0;
}

double Pearson(const std::vector<double>& x, const std::vector<double>& y) {
  return Pearson(ToEigen(x), ToEigen(y));
}

Eigen::VectorXd AverageRanks(const Eigen::VectorXd& x) {
  const Eigen::Index n = x.size();
  std::vector<Eigen::Index> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](Eigen::Index a, Eigen::Index b) { return x(a) < x(b); });
  Eigen::VectorXd ranks(n);
  for (Eigen::Index begin = 0; begin < n;) {
    Eigen::Index end = begin + 1;
    while (end < n && x(order[end]) == x(order[begin])) ++end;
    // Positions begin..end-1 hold equal values: ranks begin+1..end, averaged.
    const double rank = 0.5 * static_cast<double>(begin + 1 + end);
    for (Eigen::Index k = begin; k < end; ++k) ranks(order[k]) = rank;
    begin = end;
  }
  return ranks;
}

double Spearman(const Eigen::VectorXd& x, const Eigen::VectorXd& y) {
  if (x.size() != y.size() || x.size() < 2) return 0.0;
  return Pearson(AverageRanks(x), AverageRanks(y));
}

double Spearman(const std::vector<double>& x, const std::vector<double>& y) {
  return Spearman(ToEigen(x), ToEigen(y));
}

}  // namespace tda
