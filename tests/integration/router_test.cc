// Sharded serving end to end, every process real on loopback: a model trained for real on 999
// Fashion-MNIST images, its index built with BuildIndex (one row deleted) and cut into 3 shards
// (SplitIndex; the CLI `tda index split` checked on its own, its output by `tda index verify`),
// three shard tda-servers and a router (tda-server --router) over them. The router must answer
// exactly what one server of the whole index answers (ids, rows, scores to float rounding,
// per-source sums, score vectors), for every served method; a passed deadline is DEADLINE_EXCEEDED;
// a late shard (SIGSTOP) and a dead one (SIGKILL) are named with their address and rows
// (DEADLINE_EXCEEDED, UNAVAILABLE), and with allow_partial the answer lists the missing shard and
// none of its rows.
#include <gmock/gmock.h>
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "child_process.h"
#include "common/atomic_file.h"
#include "data/fashion_mnist.h"
#include "index/gradient_index.h"
#include "index/index_builder.h"
#include "index/index_split.h"
#include "index/index_update.h"
#include "index/shard_map.h"
#include "tda/v1/attribution.grpc.pb.h"
#include "test_support.h"

namespace tda {
namespace {

using ::tda::testing::ChildProcess;
using ::tda::testing::RunCommand;
using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr int64_t kTrainSize = 999;  // 333 rows per shard
constexpr int kShards = 3;

// Starts one tda-server per entry of `what` (its flags) at once, on 127.0.0.1:0, and reads
// each bound address from its "listening" line. nullptr entries after a failure.
std::vector<ChildProcess*> StartServers(const std::vector<std::vector<std::string>>& what,
                                        std::vector<std::string>* addresses) {
  std::vector<ChildProcess*> children;
  for (const std::vector<std::string>& flags : what) {
    std::vector<std::string> argv = {TDA_SERVER_BINARY, "--listen", "127.0.0.1:0", "--threads",
                                     "1"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    absl::StatusOr<std::unique_ptr<ChildProcess>> child = ChildProcess::Start(argv);
    EXPECT_TRUE(child.ok()) << child.status();
    children.push_back(child.ok() ? child->release() : nullptr);
  }
  addresses->clear();
  for (ChildProcess*& child : children) {
    absl::StatusOr<std::string> line =
        child == nullptr ? absl::UnavailableError("not started")
                         : child->ReadLineContaining("tda-server listening on ", 120);
    EXPECT_TRUE(line.ok()) << line.status();
    addresses->push_back(line.ok() ? line->substr(line->rfind(' ') + 1) : "");
    if (!line.ok()) {
      delete child;
      child = nullptr;
    }
  }
  return children;
}

std::unique_ptr<v1::AttributionService::Stub> Stub(const std::string& address) {
  return v1::AttributionService::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
}

class RouterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    TrainRecipe recipe;
    std::unique_ptr<Model> model = testing::TrainTinyModel({}, &recipe);
    ASSERT_NE(model, nullptr);
    TDA_ASSERT_OK(model->Save(dir_->file("model"), recipe));
    IndexBuildOptions options;
    options.model_dir = dir_->file("model");
    options.out_dir = dir_->file("index");
    options.projection_dim_per_side = 8;
    options.rows_per_shard = 200;  // several row files per index and per shard
    TDA_ASSERT_OK(BuildIndex(testing::FashionTrain(kTrainSize), kFashionMnistDefaultDir, options));
    // A deleted row (in shard 1): its tombstone must travel with it.
    TDA_ASSERT_OK(DeleteFromIndex(options.out_dir, {"fashion-mnist/train/400"}));
    // In process (what `tda index split` runs; the CLI itself is tested below).
    TDA_ASSERT_OK(SplitIndex(options.out_dir, kShards, dir_->file("shards")));
    absl::StatusOr<ShardMap> map = ReadShardMap(dir_->file("shards/shardmap.json"));
    TDA_ASSERT_OK(map);
    ASSERT_EQ(map->shards.size(), static_cast<size_t>(kShards));
    std::vector<std::vector<std::string>> servers = {{"--index", options.out_dir}};
    for (int i = 0; i < kShards; ++i) {
      servers.push_back({"--index", dir_->file(absl::StrCat("shards/shard-", i))});
    }
    std::vector<std::string> addresses;
    std::vector<ChildProcess*> started = StartServers(servers, &addresses);
    whole_ = started[0];
    whole_address_ = addresses[0];
    for (int i = 0; i < kShards; ++i) {
      shards_[i] = started[i + 1];
      map->shards[i].address = addresses[i + 1];
    }
    testing::WriteText(dir_->file("shards/shardmap.json"), ShardMapToJson(*map));
    map_ = new ShardMap(*map);
    std::vector<ChildProcess*> router =
        StartServers({{"--router", dir_->file("shards/shardmap.json")}}, &addresses);
    router_address_ = addresses[0];
    for (ChildProcess* child : started) ASSERT_NE(child, nullptr);
    router_ = router[0];
  }

  static void TearDownTestSuite() {
    delete router_;
    delete whole_;
    for (ChildProcess*& shard : shards_) delete shard;
    delete map_;
    delete dir_;
  }

  void SetUp() override { ASSERT_NE(router_, nullptr) << "suite setup failed"; }

  static v1::AttributeRequest Request(v1::Method method, int top_k) {
    v1::AttributeRequest request;
    request.add_queries()->set_sample_id("fashion-mnist/test/0");
    request.add_queries()->set_sample_id("fashion-mnist/test/1");
    v1::Query* relabelled = request.add_queries();
    relabelled->set_sample_id("fashion-mnist/test/2");
    relabelled->set_label(3);
    request.add_queries()->set_sample_id("fashion-mnist/train/500");
    request.set_top_k(top_k);
    request.set_method(method);
    request.set_return_scores(true);
    return request;
  }

  static grpc::Status Call(const std::string& address, const v1::AttributeRequest& request,
                           v1::AttributeResponse* response, double deadline_seconds = 60) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::milliseconds(static_cast<int64_t>(deadline_seconds * 1000)));
    return Stub(address)->Attribute(&context, request, response);
  }

  static inline testing::TempDir* dir_ = nullptr;
  static inline ShardMap* map_ = nullptr;
  static inline ChildProcess* shards_[kShards] = {};
  static inline ChildProcess* whole_ = nullptr;
  static inline ChildProcess* router_ = nullptr;
  static inline std::string whole_address_, router_address_;
};

// Float rounding: a shard's row blocks differ from the whole index's, so the scan's float
// sums of a row's products may differ in their last bits; `tolerance` is scaled to the
// query's largest score.
void ExpectHitsEqual(const google::protobuf::RepeatedPtrField<v1::Hit>& routed,
                     const google::protobuf::RepeatedPtrField<v1::Hit>& whole, double tolerance) {
  ASSERT_EQ(routed.size(), whole.size());
  for (int i = 0; i < routed.size(); ++i) {
    EXPECT_EQ(routed[i].row(), whole[i].row()) << "rank " << i;
    EXPECT_EQ(routed[i].sample_id(), whole[i].sample_id()) << "rank " << i;
    EXPECT_EQ(routed[i].source(), whole[i].source());
    EXPECT_EQ(routed[i].label(), whole[i].label());
    EXPECT_EQ(routed[i].preview(), whole[i].preview());
    EXPECT_NEAR(routed[i].score(), whole[i].score(), tolerance);
  }
}

TEST_F(RouterTest, SplitShardsVerifyAndASecondSplitIsRefused) {
  absl::StatusOr<testing::CommandResult> split =
      RunCommand({TDA_CLI_BINARY, "index", "split", dir_->file("index"), "--shards", "2", "--out",
                  dir_->file("cli-shards"), "--json"},
                 120);
  TDA_ASSERT_OK(split);
  ASSERT_EQ(split->exit_code, 0) << split->stdout_text;
  EXPECT_THAT(split->stdout_text, HasSubstr("\"first_row\": 499, \"rows\": 500"));
  absl::StatusOr<testing::CommandResult> verify = RunCommand(
      {TDA_CLI_BINARY, "index", "verify", "--index", dir_->file("cli-shards/shard-1")}, 60);
  TDA_ASSERT_OK(verify);
  EXPECT_EQ(verify->exit_code, 0) << verify->stdout_text;
  EXPECT_THAT(verify->stdout_text, HasSubstr("is intact"));
  TDA_ASSERT_OK(VerifyIndex(dir_->file("cli-shards/shard-0")));  // what tda index verify runs
  for (int i = 0; i < kShards; ++i) {
    const std::string shard = dir_->file(absl::StrCat("shards/shard-", i));
    TDA_ASSERT_OK(VerifyIndex(shard));
    const std::string manifest = testing::ReadText(shard + "/manifest.json");
    EXPECT_THAT(manifest, HasSubstr(absl::StrCat("\"first_row\": ", i * kTrainSize / kShards)));
    EXPECT_THAT(manifest, HasSubstr(absl::StrCat("\"total_rows\": ", kTrainSize)));
    EXPECT_THAT(manifest, HasSubstr(map_->parent_manifest_xxh3));
  }
  const std::string before = testing::ReadText(dir_->file("cli-shards/shard-0/manifest.json"));
  absl::StatusOr<testing::CommandResult> again =
      RunCommand({TDA_CLI_BINARY, "index", "split", dir_->file("index"), "--shards", "3", "--out",
                  dir_->file("cli-shards")},
                 60);
  TDA_ASSERT_OK(again);
  EXPECT_EQ(again->exit_code, 1);
  EXPECT_EQ(testing::ReadText(dir_->file("cli-shards/shard-0/manifest.json")), before);
  EXPECT_FALSE(std::filesystem::exists(dir_->file("cli-shards/shard-2")));
}

TEST_F(RouterTest, RouterAnswersExactlyWhatOneServerOfTheWholeIndexAnswers) {
  for (v1::Method method : {v1::METHOD_EKFAC, v1::METHOD_KFAC, v1::METHOD_GRADIENT_DOT}) {
    // 400 > 333 rows per shard: the merge must take more than one shard's top-k.
    for (int top_k : {7, 400}) {
      SCOPED_TRACE(absl::StrCat(v1::Method_Name(method), " top_k ", top_k));
      const v1::AttributeRequest request = Request(method, top_k);
      v1::AttributeResponse routed, whole;
      grpc::Status r = Call(router_address_, request, &routed);
      ASSERT_TRUE(r.ok()) << r.error_message();
      grpc::Status w = Call(whole_address_, request, &whole);
      ASSERT_TRUE(w.ok()) << w.error_message();
      EXPECT_EQ(routed.index_rows(), kTrainSize);
      EXPECT_EQ(routed.method(), whole.method());
      EXPECT_EQ(routed.missing_shards_size(), 0);
      ASSERT_EQ(routed.results_size(), whole.results_size());
      for (int q = 0; q < whole.results_size(); ++q) {
        const v1::QueryResult& a = routed.results(q);
        const v1::QueryResult& b = whole.results(q);
        SCOPED_TRACE(b.query_id());
        EXPECT_EQ(a.query_id(), b.query_id());
        EXPECT_EQ(a.label(), b.label());
        EXPECT_EQ(a.predicted_label(), b.predicted_label());
        EXPECT_DOUBLE_EQ(a.loss(), b.loss());
        ASSERT_EQ(a.scores_size(), kTrainSize);
        ASSERT_EQ(b.scores_size(), kTrainSize);
        double largest = 0, absolute_sum = 0;
        for (float score : b.scores()) {
          if (std::isnan(score)) continue;
          largest = std::max(largest, std::abs(static_cast<double>(score)));
          absolute_sum += std::abs(score);
        }
        const double tolerance = 1e-5 * largest;
        for (int i = 0; i < kTrainSize; ++i) {
          if (std::isnan(b.scores(i))) {
            ASSERT_TRUE(std::isnan(a.scores(i))) << "row " << i << " is deleted";
            continue;
          }
          ASSERT_NEAR(a.scores(i), b.scores(i), tolerance) << "row " << i;
        }
        EXPECT_TRUE(std::isnan(b.scores(400)));
        ASSERT_GT(b.proponents_size(), 0);
        ExpectHitsEqual(a.proponents(), b.proponents(), tolerance);
        ExpectHitsEqual(a.opponents(), b.opponents(), tolerance);
        ASSERT_EQ(a.source_totals_size(), b.source_totals_size());
        for (int s = 0; s < b.source_totals_size(); ++s) {
          EXPECT_EQ(a.source_totals(s).source(), b.source_totals(s).source());
          EXPECT_EQ(a.source_totals(s).count(), b.source_totals(s).count());
          EXPECT_NEAR(a.source_totals(s).sum(), b.source_totals(s).sum(), 1e-5 * absolute_sum);
        }
      }
    }
  }
}

TEST_F(RouterTest, RefusesWhatNeedsTheDocumentsLowRankAndAPassedDeadline) {
  v1::AttributeRequest request = Request(v1::METHOD_EKFAC, 5);
  request.set_group_by_document(true);
  v1::AttributeResponse response;
  grpc::Status refused = Call(router_address_, request, &response);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(refused.error_message(), HasSubstr("group_by_document"));
  // Low-rank query batches: not on a router; a server of the whole index refuses them with
  // return_scores (over real gRPC, before the call queues).
  v1::AttributeRequest low_rank = Request(v1::METHOD_EKFAC, 5);
  low_rank.set_query_rank(2);
  refused = Call(router_address_, low_rank, &response);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(refused.error_message(), HasSubstr("query_rank"));
  low_rank.set_return_scores(true);
  refused = Call(whole_address_, low_rank, &response);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(refused.error_message(), AllOf(HasSubstr("query_rank"), HasSubstr("return_scores")));
  grpc::Status late = Call(router_address_, Request(v1::METHOD_EKFAC, 5), &response, 0.001);
  EXPECT_EQ(late.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << late.error_message();
}

// Last: it stops and kills shard 1 (rows [333, 666)).
TEST_F(RouterTest, ALateOrDeadShardIsNamedOrListedAsMissing) {
  const std::string named = absl::StrCat(map_->shards[1].address, " (rows [333, 666))");
  const v1::AttributeRequest request = Request(v1::METHOD_EKFAC, 20);
  v1::AttributeRequest partial = request;
  partial.set_allow_partial(true);

  shards_[1]->Signal(SIGSTOP);  // late: it never answers
  v1::AttributeResponse response;
  grpc::Status late = Call(router_address_, request, &response, 3);
  EXPECT_EQ(late.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << late.error_message();
  EXPECT_THAT(late.error_message(), HasSubstr(named));
  response.Clear();
  grpc::Status flagged = Call(router_address_, partial, &response, 3);
  ASSERT_TRUE(flagged.ok()) << flagged.error_message();
  ASSERT_EQ(response.missing_shards_size(), 1);
  EXPECT_EQ(response.missing_shards(0).address(), map_->shards[1].address);
  EXPECT_EQ(response.missing_shards(0).first_row(), 333);
  EXPECT_EQ(response.missing_shards(0).rows(), 333);
  shards_[1]->Signal(SIGCONT);

  shards_[1]->Signal(SIGKILL);  // down
  TDA_ASSERT_OK(shards_[1]->Wait(10));
  grpc::Status down = Call(router_address_, request, &response);
  EXPECT_EQ(down.error_code(), grpc::StatusCode::UNAVAILABLE) << down.error_message();
  EXPECT_THAT(down.error_message(), HasSubstr(named));
  response.Clear();
  grpc::Status answered = Call(router_address_, partial, &response);
  ASSERT_TRUE(answered.ok()) << answered.error_message();
  ASSERT_EQ(response.missing_shards_size(), 1);
  EXPECT_THAT(response.missing_shards(0).error(), HasSubstr("UNAVAILABLE"));
  v1::AttributeResponse whole;
  ASSERT_TRUE(Call(whole_address_, request, &whole).ok());
  for (int q = 0; q < response.results_size(); ++q) {
    const v1::QueryResult& r = response.results(q);
    // The other shards' rows of the whole index's top-k, in order, lead the partial top-k.
    std::vector<int64_t> expected;
    for (const v1::Hit& hit : whole.results(q).proponents()) {
      if (hit.row() < 333 || hit.row() >= 666) expected.push_back(hit.row());
    }
    ASSERT_GE(r.proponents_size(), static_cast<int>(expected.size()));
    for (size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(r.proponents(i).row(), expected[i]);
    for (const v1::Hit& hit : r.proponents()) EXPECT_TRUE(hit.row() < 333 || hit.row() >= 666);
    for (int i = 333; i < 666; ++i) EXPECT_TRUE(std::isnan(r.scores(i)));
    EXPECT_FALSE(std::isnan(r.scores(0)));
  }
}

}  // namespace
}  // namespace tda
