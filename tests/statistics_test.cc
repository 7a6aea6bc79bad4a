// Pearson and Spearman correlations, checked against values computed by hand.
#include "common/statistics.h"

#include <cmath>
#include <vector>

#include "test_support.h"

namespace tda {
namespace {

TEST(Statistics, pearson_of_linear_relations_is_plus_or_minus_one) {
  const std::vector<double> x = {1, 2, 3, 4, 5};
  const std::vector<double> up = {3, 5, 7, 9, 11}, down = {-1, -2, -3, -4, -5};
  EXPECT_NEAR(Pearson(x, up), 1.0, 1e-12);
  EXPECT_NEAR(Pearson(x, down), -1.0, 1e-12);
}

TEST(Statistics, pearson_matches_a_hand_computed_value) {
  // x = {1,2,3}, y = {1,3,2}: deviations {-1,0,1} and {-1,1,0}: r = 1 / (sqrt 2
  // sqrt 2).
  EXPECT_NEAR(Pearson(std::vector<double>{1, 2, 3}, std::vector<double>{1, 3, 2}), 0.5, 1e-12);
}

TEST(Statistics, degenerate_samples_give_zero) {
  EXPECT_EQ(Pearson(std::vector<double>{1, 1, 1}, std::vector<double>{1, 2, 3}), 0.0);
  EXPECT_EQ(Pearson(std::vector<double>{1, 2}, std::vector<double>{1, 2, 3}), 0.0);
  EXPECT_EQ(Spearman(std::vector<double>{4}, std::vector<double>{2}), 0.0);
}

TEST(Statistics, average_ranks_share_ties) {
  Eigen::VectorXd x(6);
  x << 10, 20, 20, 5, 20, 30;
  Eigen::VectorXd want(6);
  want << 2, 4, 4, 1, 4, 6;
  EXPECT_TRUE(AverageRanks(x).isApprox(want)) << AverageRanks(x).transpose();
}

TEST(Statistics, spearman_is_one_for_any_monotone_relation) {
  Eigen::VectorXd x(5), y(5);
  x << 0.1, 0.5, 0.2, 3, 1;
  y = x.array().exp().pow(3);  // monotone, far from linear
  EXPECT_NEAR(Spearman(x, y), 1.0, 1e-12);
  EXPECT_NEAR(Spearman(x, Eigen::VectorXd(-y)), -1.0, 1e-12);
  EXPECT_LT(Pearson(x, y), 0.99);
}

TEST(Statistics, spearman_with_ties_uses_average_ranks) {
  // Ranks {1, 2.5, 2.5, 4, 5} and {2, 1, 3.5, 3.5, 5}: r = 7.25 / 9.5 (as
  // scipy.stats.spearmanr).
  const std::vector<double> x = {1, 2, 2, 3, 4}, y = {2, 1, 3, 3, 5};
  EXPECT_NEAR(Spearman(x, y), 7.25 / 9.5, 1e-12);
}

}  // namespace
}  // namespace tda
