// Ensemble indexes (index/ensemble_manifest.h, attribution/ensemble.cc) on real models: three
// 784-16-10 MLPs trained on 512 Fashion-MNIST images with seeds 0, 1, 2. The ensemble's scores,
// top-k, per-source sums, self-influence and batch scores are the mean of its members' (each
// opened as an ordinary index); its first k members are the ensemble of k; a build trains the
// members it is not given by member 0's recipe; a changed or damaged member is refused.
#include <filesystem>
#include <fstream>

#include "data/fortunes.h"
#include "index/ensemble_manifest.h"
#include "index/gradient_index.h"
#include "index/index_builder.h"
#include "ops/build_model_index.h"
#include "test_support.h"

namespace tda {
namespace {

using ::testing::HasSubstr;
using testing::StatusIs;

constexpr int64_t kTrainRows = 512;
constexpr int64_t kMembers = 3;

struct Fixture {
  testing::TempDir dir;
  std::vector<std::string> model_dirs;
  std::string ensemble_dir;
  std::unique_ptr<Attributor> ensemble;
  std::vector<std::unique_ptr<Attributor>> members;  // each member directory opened alone
};

ModelIndexRequest Request(const std::string& model_dir, const std::string& out_dir) {
  ModelIndexRequest request;
  request.index.model_dir = model_dir;
  request.index.out_dir = out_dir;
  request.index.projection_dim_per_side = 8;
  return request;
}

Fixture* MakeFixture() {
  InitCompute(1);
  auto* f = new Fixture;
  for (int64_t k = 0; k < kMembers; ++k) {
    testing::TinyModelSpec spec;
    spec.train_size = kTrainRows;
    spec.seed = static_cast<uint64_t>(k);
    TrainRecipe recipe;
    std::unique_ptr<Model> model = testing::TrainTinyModel(spec, &recipe);
    f->model_dirs.push_back(f->dir.file(absl::StrCat("model-", k)));
    EXPECT_TRUE(model->Save(f->model_dirs.back(), recipe).ok());
  }
  f->ensemble_dir = f->dir.file("ensemble");
  ModelIndexRequest request = Request(f->model_dirs[0], f->ensemble_dir);
  request.ensemble = kMembers;
  request.member_models = {f->model_dirs[1], f->model_dirs[2]};
  absl::StatusOr<ModelIndexPlan> built = BuildModelIndex(request);
  EXPECT_TRUE(built.ok()) << built.status();
  absl::StatusOr<std::unique_ptr<Attributor>> opened = Attributor::Open(f->ensemble_dir);
  EXPECT_TRUE(opened.ok()) << opened.status();
  if (opened.ok()) f->ensemble = std::move(*opened);
  for (int64_t k = 0; k < kMembers; ++k) {
    absl::StatusOr<std::unique_ptr<Attributor>> member =
        Attributor::Open(EnsembleMemberDir(f->ensemble_dir, k));
    EXPECT_TRUE(member.ok()) << member.status();
    if (member.ok()) f->members.push_back(std::move(*member));
  }
  return f;
}

Fixture& Shared() {
  static Fixture* f = MakeFixture();
  return *f;
}

std::vector<Query> TestQueries(int64_t n) {
  std::vector<Query> queries;
  for (int64_t i = 0; i < n; ++i) {
    queries.push_back({absl::StrCat("fashion-mnist/test/", i), {}, -1, std::nullopt});
  }
  return queries;
}

// Every row's score of each query, rows x Q.
Eigen::MatrixXd AllScores(const Attributor& attributor, const std::vector<Query>& queries,
                          AttributeOptions options) {
  options.return_scores = true;
  absl::StatusOr<std::vector<QueryResult>> results = attributor.Attribute(queries, options);
  EXPECT_TRUE(results.ok()) << results.status();
  Eigen::MatrixXd scores(attributor.index().rows(), static_cast<Eigen::Index>(queries.size()));
  if (!results.ok()) return scores;
  for (size_t q = 0; q < queries.size(); ++q) {
    for (int64_t r = 0; r < scores.rows(); ++r) scores(r, q) = (*results)[q].scores[r];
  }
  return scores;
}

// The mean of the first `k` members' scores.
Eigen::MatrixXd MeanOfMembers(const Fixture& f, int64_t k, const std::vector<Query>& queries,
                              AttributeOptions options) {
  options.ensemble_members = 0;  // each member alone
  Eigen::MatrixXd sum = AllScores(*f.members[0], queries, options);
  for (int64_t m = 1; m < k; ++m) sum += AllScores(*f.members[m], queries, options);
  return sum / static_cast<double>(k);
}

double MaxRelativeError(const Eigen::MatrixXd& got, const Eigen::MatrixXd& want) {
  return (got - want).cwiseAbs().maxCoeff() / want.cwiseAbs().maxCoeff();
}

TEST(EnsembleIndex, ScoresAreTheMeanOfItsMembersScores) {
  Fixture& f = Shared();
  ASSERT_NE(f.ensemble, nullptr);
  ASSERT_EQ(f.members.size(), static_cast<size_t>(kMembers));
  EXPECT_EQ(f.ensemble->ensemble_size(), kMembers);
  const std::vector<Query> queries = TestQueries(4);
  for (Method method : {Method::kEkfac, Method::kGradientDot}) {
    for (bool unit_norm : {false, true}) {
      AttributeOptions options;
      options.method = method;
      options.unit_norm = unit_norm;
      const Eigen::MatrixXd mean = MeanOfMembers(f, kMembers, queries, options);
      const double error = MaxRelativeError(AllScores(*f.ensemble, queries, options), mean);
      EXPECT_LT(error, 1e-5) << MethodName(method) << " unit_norm " << unit_norm;
      // The members disagree: the mean is not any one member's ranking.
      EXPECT_GT(MaxRelativeError(AllScores(*f.members[0], queries, options), mean), 0.05);
    }
  }
  // The first k members are the ensemble of k; one member is member 0 bit for bit.
  for (int64_t k = 1; k <= kMembers; ++k) {
    AttributeOptions options;
    options.ensemble_members = k;
    const Eigen::MatrixXd got = AllScores(*f.ensemble, queries, options);
    if (k == 1) {
      EXPECT_EQ(got, AllScores(*f.members[0], queries, AttributeOptions{}));
    } else {
      EXPECT_LT(MaxRelativeError(got, MeanOfMembers(f, k, queries, options)), 1e-5) << k;
    }
  }
}

TEST(EnsembleIndex, TopKSourceTotalsAndLossesAreTheMeans) {
  Fixture& f = Shared();
  ASSERT_NE(f.ensemble, nullptr);
  const std::vector<Query> queries = TestQueries(3);
  AttributeOptions options;
  options.top_k = 5;
  const Eigen::MatrixXd mean = MeanOfMembers(f, kMembers, queries, options);
  absl::StatusOr<std::vector<QueryResult>> results = f.ensemble->Attribute(queries, options);
  ASSERT_TRUE(results.ok()) << results.status();
  for (size_t q = 0; q < queries.size(); ++q) {
    const QueryResult& result = (*results)[q];
    ASSERT_EQ(result.proponents.size(), 5u);
    // The top proponent of the mean, and every hit's score, are the mean's.
    Eigen::Index best;
    mean.col(q).maxCoeff(&best);
    EXPECT_EQ(result.proponents[0].row, best);
    for (const Hit& hit : result.proponents) {
      EXPECT_NEAR(hit.score, mean(hit.row, q), 1e-5 * std::abs(mean(best, q)));
    }
    ASSERT_EQ(result.source_totals.size(), 1u);
    EXPECT_NEAR(result.source_totals[0].sum, mean.col(q).sum(),
                1e-4 * mean.col(q).cwiseAbs().sum());
    double loss = 0;
    for (const auto& member : f.members) {
      absl::StatusOr<std::vector<QueryResult>> own = member->Attribute({queries[q]}, options);
      ASSERT_TRUE(own.ok()) << own.status();
      loss += (*own)[0].loss / kMembers;
    }
    EXPECT_NEAR(result.loss, loss, 1e-9);
  }
}

TEST(EnsembleIndex, SelfInfluenceAndBatchScoresAreTheMeans) {
  Fixture& f = Shared();
  ASSERT_NE(f.ensemble, nullptr);
  AttributeOptions options;
  absl::StatusOr<Eigen::VectorXd> self = f.ensemble->SelfInfluence(options);
  ASSERT_TRUE(self.ok()) << self.status();
  Eigen::VectorXd mean = Eigen::VectorXd::Zero(kTrainRows);
  for (const auto& member : f.members) mean += *member->SelfInfluence(options) / kMembers;
  EXPECT_LT((*self - mean).cwiseAbs().maxCoeff() / mean.cwiseAbs().maxCoeff(), 1e-9);

  const Dataset& test = testing::FashionTest(6);
  const Batch batch = test.Rows(0, test.size());
  absl::StatusOr<Eigen::MatrixXf> scores = f.ensemble->ScoreBatch(batch, options);
  ASSERT_TRUE(scores.ok()) << scores.status();
  Eigen::MatrixXd member_mean = Eigen::MatrixXd::Zero(kTrainRows, test.size());
  for (const auto& member : f.members) {
    member_mean += member->ScoreBatch(batch, options)->cast<double>() / kMembers;
  }
  EXPECT_LT(MaxRelativeError(scores->cast<double>(), member_mean), 1e-5);
}

TEST(EnsembleIndex, RefusesWhatOneIndexOnlyCanDo) {
  Fixture& f = Shared();
  ASSERT_NE(f.ensemble, nullptr);
  const std::vector<Query> queries = TestQueries(1);
  AttributeOptions options;
  options.ensemble_members = kMembers + 1;
  EXPECT_THAT(f.ensemble->Attribute(queries, options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("1 to 3")));
  options.ensemble_members = 2;
  EXPECT_THAT(f.members[0]->Attribute(queries, options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("index of 1 model")));
  options.ensemble_members = 0;
  options.approximate.enabled = true;
  EXPECT_THAT(f.ensemble->Attribute(queries, options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("ensemble_members 1")));
  // Row-level tools name a member instead.
  EXPECT_THAT(GradientIndex::Open(f.ensemble_dir),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("member-00")));
  // Members whose rows have another dimension (an MLP 4 wide, projected to 4 x 8 per side where
  // the others have 8 x 8) are no ensemble: the build says so and
  // leaves no ensemble.json.
  testing::TempDir dir;
  testing::TinyModelSpec narrow;
  narrow.train_size = kTrainRows;
  narrow.hidden = {4};
  TrainRecipe narrow_recipe;
  ASSERT_TRUE(testing::TrainTinyModel(narrow, &narrow_recipe)
                  ->Save(dir.file("narrow"), narrow_recipe)
                  .ok());
  ModelIndexRequest mixed = Request(f.model_dirs[0], dir.file("mixed"));
  mixed.ensemble = 2;
  mixed.member_models = {dir.file("narrow")};
  EXPECT_THAT(BuildModelIndex(mixed), StatusIs(absl::StatusCode::kFailedPrecondition,
                                               HasSubstr("do not form an ensemble")));
  EXPECT_FALSE(IsEnsembleDir(dir.file("mixed")));
  // An ensemble is not written over a single index.
  ModelIndexRequest request = Request(f.model_dirs[0], EnsembleMemberDir(f.ensemble_dir, 0));
  request.ensemble = 2;
  request.member_models = {f.model_dirs[1]};
  EXPECT_THAT(BuildModelIndex(request),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("holds a single index")));
}

TEST(EnsembleIndex, VerifyNamesADamagedMembersFileAndAChangedMemberIsRefused) {
  testing::TempDir dir;
  const Fixture& f = Shared();
  // A copy of the ensemble, damaged and changed.
  const std::string copy = dir.file("ensemble");
  std::filesystem::copy(f.ensemble_dir, copy, std::filesystem::copy_options::recursive);
  TDA_ASSERT_OK(VerifyIndex(copy));
  const std::string member = EnsembleMemberDir(copy, 2);
  std::string shard_name;
  for (const auto& entry : std::filesystem::directory_iterator(member)) {
    if (entry.path().filename().string().rfind("grads-", 0) == 0)
      shard_name = entry.path().filename();
  }
  ASSERT_FALSE(shard_name.empty());
  {
    std::fstream shard(member + "/" + shard_name, std::ios::in | std::ios::out | std::ios::binary);
    shard.seekp(100);
    shard.put('\x5a');
  }
  std::vector<std::string> bad;
  EXPECT_THAT(VerifyIndex(copy,
                          [&](const FileCheck& check) {
                            if (!check.status.ok()) bad.push_back(check.file);
                          }),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr(shard_name)));
  EXPECT_EQ(bad, std::vector<std::string>{"member-02/" + shard_name});

  // Member 1 rebuilt on its own: the ensemble's record of it no longer holds.
  ASSERT_TRUE(BuildModelIndex(Request(f.model_dirs[2], EnsembleMemberDir(copy, 1))).ok());
  EXPECT_THAT(Attributor::Open(copy),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("member-01 changed")));
}

TEST(EnsembleIndex, BuildTrainsTheMembersItIsNotGivenByTheRecipe) {
  testing::TempDir dir;
  const Fixture& f = Shared();
  ModelIndexRequest request = Request(f.model_dirs[0], dir.file("trained"));
  request.ensemble = 2;
  TDA_ASSERT_OK(BuildModelIndex(request));
  absl::StatusOr<std::unique_ptr<Attributor>> ensemble = Attributor::Open(dir.file("trained"));
  ASSERT_TRUE(ensemble.ok()) << ensemble.status();
  ASSERT_EQ((*ensemble)->ensemble_size(), 2);
  // Member 1 is the recipe's model with seed 1: the fixture's model-1, trained the same way.
  TrainRecipe recipe;
  absl::StatusOr<std::unique_ptr<Model>> seed1 = LoadModel(f.model_dirs[1], &recipe);
  ASSERT_TRUE(seed1.ok());
  EXPECT_EQ((*ensemble)->member(1).model().Fingerprint(), (*seed1)->Fingerprint());
  EXPECT_NE((*ensemble)->member(0).model().Fingerprint(), (*seed1)->Fingerprint());
  // Only the members and ensemble.json remain (the trained model lives in member-01/model).
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir.file("trained"))) {
    names.push_back(entry.path().filename());
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"ensemble.json", "member-00", "member-01"}));
}

// A text query of an ensemble of two fortunes GPTs: each hit's per-token scores (summed over the
// members' models) add up to its score, which is the mean of the members' scores of that row.
TEST(EnsembleIndex, PerTokenScoresOfATextQuerySumToTheMeanScore) {
  testing::TempDir dir;
  const Dataset& docs = testing::FortunesTrain(160, 64);
  const ModelConfig config = GptConfig(/*context_length=*/64, /*d_model=*/32, /*layers=*/1,
                                       /*heads=*/2, /*mlp_width=*/64, /*tied_head=*/false);
  const std::string ensemble = dir.file("ensemble");
  for (int64_t k = 0; k < 2; ++k) {
    TrainRecipe recipe;
    std::unique_ptr<Model> model =
        testing::TrainTinyGpt(config, docs, /*epochs=*/2, static_cast<uint64_t>(k), &recipe);
    ASSERT_NE(model, nullptr);
    const std::string model_dir = dir.file(absl::StrCat("model-", k));
    TDA_ASSERT_OK(model->Save(model_dir, recipe));
    IndexBuildOptions options;
    options.model_dir = model_dir;
    options.out_dir = EnsembleMemberDir(ensemble, k);
    options.projection_dim_per_side = 8;
    TDA_ASSERT_OK(BuildIndex(docs, kFortunesDefaultDir, options));
  }
  TDA_ASSERT_OK(WriteEnsembleManifest(ensemble, 2));
  absl::StatusOr<std::unique_ptr<Attributor>> both = Attributor::Open(ensemble);
  ASSERT_TRUE(both.ok()) << both.status();
  Query query;
  query.text = TextQuery{"Q: What is a computer?\n", "A: a machine that does what you say."};
  AttributeOptions options;
  options.top_k = 4;
  options.token_scores = true;
  options.return_scores = true;
  for (bool unit_norm : {false, true}) {
    options.unit_norm = unit_norm;
    absl::StatusOr<std::vector<QueryResult>> results = (*both)->Attribute({query}, options);
    ASSERT_TRUE(results.ok()) << results.status();
    std::vector<std::vector<float>> member_scores;
    for (int64_t k = 0; k < 2; ++k) {
      AttributeOptions alone = options;
      alone.ensemble_members = 1;  // member(0) is the ensemble itself: its first member only
      absl::StatusOr<std::vector<QueryResult>> own = (*both)->member(k).Attribute({query}, alone);
      ASSERT_TRUE(own.ok()) << own.status();
      member_scores.push_back((*own)[0].scores);
    }
    const QueryResult& result = (*results)[0];
    ASSERT_FALSE(result.proponents.empty());
    for (const Hit& hit : result.proponents) {
      double sum = 0;
      for (float s : hit.token_scores) sum += s;
      EXPECT_NEAR(sum, hit.score, 1e-4 * std::abs(hit.score)) << hit.id;
      const double mean = (member_scores[0][hit.row] + member_scores[1][hit.row]) / 2;
      EXPECT_NEAR(hit.score, mean, 1e-5 * std::abs(mean)) << hit.id;
    }
  }
}

}  // namespace
}  // namespace tda
