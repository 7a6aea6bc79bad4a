// Correlation statistics used to judge attribution methods: Pearson (linear)
// and Spearman (rank) correlation of two equally long samples. Pure functions,
// thread-safe.
#pragma once

#include <Eigen/Core>
#include <vector>

namespace tda {

// Pearson's r of x and y. Returns 0 when either sample has zero variance (or
// the sizes differ, or there are fewer than two points): "no linear relation
// can be measured".
double Pearson(const Eigen::VectorXd& x, const Eigen::VectorXd& y);
double Pearson(const std::vector<double>& x, const std::vector<double>& y);

// Ranks 1..n of the values of x; tied values all get the average of the ranks
// they span.
Eigen::VectorXd AverageRanks(const Eigen::VectorXd& x);

// Spearman's rho: Pearson's r of the average ranks of x and y (ties handled as
// above). Returns 0 in the same degenerate cases as Pearson.
double Spearman(const Eigen::VectorXd& x, const Eigen::VectorXd& y);
double Spearman(const std::vector<double>& x, const std::vector<double>& y);

}  // namespace tda
