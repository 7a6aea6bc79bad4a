// tda-server --repository serving several indexes by name, against the real binary over
// loopback: a Fashion-MNIST MLP and a fortunes GPT served from one repository answer exactly
// (byte for byte) as two single-index servers do; ListIndexes, DescribeIndex and the CLI name
// them and their versions; an unknown name is NOT_FOUND listing the served names, a missing
// name INVALID_ARGUMENT when several are served (and optional with one); and the server's
// resident memory against the bytes of the three indexes it serves (printed: README "Serving
// several indexes"); and the call log: one JSON line on stderr per call (server/call_log.h).
#include <gmock/gmock.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "client/remote_attributor.h"
#include "repository_support.h"
#include "team_server.h"
#include "test_support.h"

namespace tda {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::tda::testing::ChildProcess;
using ::tda::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

std::unique_ptr<RemoteAttributor> Connect(const std::string& address,
                                          const std::string& index_name) {
  RemoteAttributor::Options options;
  options.index_name = index_name;
  absl::StatusOr<std::unique_ptr<RemoteAttributor>> remote =
      RemoteAttributor::Connect(address, options);
  EXPECT_TRUE(remote.ok()) << remote.status();
  return remote.ok() ? std::move(*remote) : nullptr;
}

v1::AttributeRequest SampleRequest() {
  v1::AttributeRequest request;
  for (const char* id : {"fashion-mnist/test/0", "fashion-mnist/test/3", "fashion-mnist/train/5"}) {
    request.add_queries()->set_sample_id(id);
  }
  request.set_top_k(6);
  request.set_return_scores(true);
  request.set_group_by_document(true);
  return request;
}

v1::AttributeRequest TextRequest() {
  v1::AttributeRequest request;
  v1::TextQuery* text = request.add_queries()->mutable_text();
  text->set_prompt("Q: Why did the chicken cross?\n");
  text->set_completion("A: To get to the other side.");
  request.set_top_k(5);
  request.set_return_scores(true);
  request.set_group_by_document(true);
  return request;
}

// DescribeIndex without what differs between a repository and a single-index server: the
// name and version it is served under, and the background verification's progress.
v1::DescribeIndexResponse ContentOf(v1::DescribeIndexResponse description) {
  description.clear_index();
  description.clear_version();
  description.clear_verification();
  return description;
}

void ExpectSameAnswers(const RemoteAttributor& repository, const RemoteAttributor& single,
                       const v1::AttributeRequest& request) {
  absl::StatusOr<v1::AttributeResponse> got = repository.AttributeRaw(request);
  absl::StatusOr<v1::AttributeResponse> want = single.AttributeRaw(request);
  TDA_ASSERT_OK(got);
  TDA_ASSERT_OK(want);
  ASSERT_GT(want->results_size(), 0);
  EXPECT_TRUE(MessageDifferencer::Equals(*got, *want));
  absl::StatusOr<v1::DescribeIndexResponse> got_description = repository.Describe();
  absl::StatusOr<v1::DescribeIndexResponse> want_description = single.Describe();
  TDA_ASSERT_OK(got_description);
  TDA_ASSERT_OK(want_description);
  EXPECT_TRUE(
      MessageDifferencer::Equals(ContentOf(*got_description), ContentOf(*want_description)));
}

TEST(RepositoryServing, TwoIndexesAnswerLikeSingleIndexServers) {
  testing::TempDir dir;
  absl::StatusOr<std::string> mlp = testing::BuildSmallIndex(dir.path());
  TDA_ASSERT_OK(mlp);
  absl::StatusOr<std::string> gpt = testing::BuildFortunesIndex(dir.path());
  TDA_ASSERT_OK(gpt);
  const std::string repository = dir.file("repository");
  TDA_ASSERT_OK(testing::AddVersion(repository, "fmnist", 1, *mlp));
  TDA_ASSERT_OK(testing::AddVersion(repository, "fortunes", 3, *gpt));
  TDA_ASSERT_OK(testing::AddVersion(repository, "fmnist-copy", 7, *mlp));

  std::string repository_address, mlp_address, gpt_address;
  absl::StatusOr<std::unique_ptr<ChildProcess>> server = testing::StartRepositoryServer(
      repository, {"--repository-poll-seconds", "0"}, &repository_address);
  TDA_ASSERT_OK(server);
  absl::StatusOr<std::unique_ptr<ChildProcess>> mlp_server =
      testing::StartTdaServer(*mlp, "127.0.0.1:0", {}, &mlp_address);
  TDA_ASSERT_OK(mlp_server);
  absl::StatusOr<std::unique_ptr<ChildProcess>> gpt_server =
      testing::StartTdaServer(*gpt, "127.0.0.1:0", {}, &gpt_address);
  TDA_ASSERT_OK(gpt_server);

  // Resident memory before any query: the process and the open indexes.
  const int64_t idle_rss = testing::ResidentBytes((*server)->pid());
  const int64_t idle_mlp_rss = testing::ResidentBytes((*mlp_server)->pid());
  const int64_t idle_gpt_rss = testing::ResidentBytes((*gpt_server)->pid());
  std::unique_ptr<RemoteAttributor> fmnist = Connect(repository_address, "fmnist");
  std::unique_ptr<RemoteAttributor> fortunes = Connect(repository_address, "fortunes");
  std::unique_ptr<RemoteAttributor> mlp_single = Connect(mlp_address, "");
  std::unique_ptr<RemoteAttributor> gpt_single = Connect(gpt_address, "");
  ASSERT_TRUE(fmnist && fortunes && mlp_single && gpt_single);
  ExpectSameAnswers(*fmnist, *mlp_single, SampleRequest());
  ExpectSameAnswers(*fortunes, *gpt_single, TextRequest());
  absl::StatusOr<v1::GetSampleResponse> sample = fmnist->GetSampleRaw("fashion-mnist/train/3");
  absl::StatusOr<v1::GetSampleResponse> single_sample =
      mlp_single->GetSampleRaw("fashion-mnist/train/3");
  TDA_ASSERT_OK(sample);
  TDA_ASSERT_OK(single_sample);
  EXPECT_TRUE(MessageDifferencer::Equals(*sample, *single_sample));

  // Names and versions: the repository's directories; a single index is named after its
  // directory, version 1.
  absl::StatusOr<v1::DescribeIndexResponse> described = fortunes->Describe();
  TDA_ASSERT_OK(described);
  EXPECT_EQ(described->index(), "fortunes");
  EXPECT_EQ(described->version(), 3);
  EXPECT_EQ(described->failed_version(), 0);
  described = mlp_single->Describe();
  TDA_ASSERT_OK(described);
  EXPECT_EQ(described->index(), "index");
  EXPECT_EQ(described->version(), 1);
  absl::StatusOr<v1::ListIndexesResponse> list = fmnist->ListIndexes();
  TDA_ASSERT_OK(list);
  ASSERT_EQ(list->indexes_size(), 3);
  const std::vector<std::pair<std::string, int64_t>> expected = {
      {"fmnist", 1}, {"fmnist-copy", 7}, {"fortunes", 3}};
  for (int i = 0; i < 3; ++i) {
    const v1::IndexVersionStatus& entry = list->indexes(i);
    EXPECT_EQ(entry.name(), expected[i].first);
    EXPECT_EQ(entry.version(), expected[i].second);
    EXPECT_EQ(entry.state(), v1::IndexVersionStatus::SERVING) << entry.message();
    EXPECT_EQ(entry.description().index(), expected[i].first);
    EXPECT_GT(entry.description().rows(), 0);
  }

  // The CLI names the index to ask, and lists them.
  const testing::CommandResult listed = testing::Shell(
      std::string(TDA_CLI_BINARY) + " describe --server " + repository_address + " --list");
  EXPECT_EQ(listed.exit_code, 0) << listed.stdout_text;
  EXPECT_THAT(listed.stdout_text, AllOf(HasSubstr("fmnist-copy"), HasSubstr("SERVING"),
                                        HasSubstr("fortunes"), HasSubstr("400 rows")));
  const testing::CommandResult queried =
      testing::Shell(std::string(TDA_CLI_BINARY) + " query --server " + repository_address +
                     " --index-name fmnist --id fashion-mnist/test/0 --top-k 3 --json");
  const testing::CommandResult queried_single =
      testing::Shell(std::string(TDA_CLI_BINARY) + " query --server " + mlp_address +
                     " --id fashion-mnist/test/0 --top-k 3 --json");
  EXPECT_EQ(queried.exit_code, 0) << queried.stdout_text;
  EXPECT_EQ(queried.stdout_text, queried_single.stdout_text);

  // Memory: the server maps the indexes' files; what it keeps resident is printed for the
  // README (the figure depends on the page cache and the allocator, so only sanity-checked).
  const int64_t index_bytes = testing::DirectoryBytes(repository);
  const int64_t rss = testing::ResidentBytes((*server)->pid());
  ASSERT_GT(idle_rss, 0);
  ASSERT_GT(rss, 0);
  auto mib = [](int64_t bytes) { return bytes / 1048576.0; };
  std::printf(
      "repository server, 3 indexes of %.1f MiB in all: RSS %.1f MiB idle, %.1f MiB "
      "after MLP and GPT queries; one-index servers idle: MLP %.1f MiB, GPT %.1f MiB; "
      "after the same queries: MLP %.1f MiB, GPT %.1f MiB\n",
      mib(index_bytes), mib(idle_rss), mib(rss), mib(idle_mlp_rss), mib(idle_gpt_rss),
      mib(testing::ResidentBytes((*mlp_server)->pid())),
      mib(testing::ResidentBytes((*gpt_server)->pid())));
  ::testing::Test::RecordProperty("rss_bytes", std::to_string(rss));
  ::testing::Test::RecordProperty("index_bytes", std::to_string(index_bytes));
}

TEST(RepositoryServing, UnknownAndMissingNamesAreRefused) {
  testing::TempDir dir;
  absl::StatusOr<std::string> mlp = testing::BuildSmallIndex(dir.path());
  TDA_ASSERT_OK(mlp);
  const std::string repository = dir.file("repository");
  TDA_ASSERT_OK(testing::AddVersion(repository, "alpha", 1, *mlp));
  TDA_ASSERT_OK(testing::AddVersion(repository, "beta", 2, *mlp));
  std::string address, single_address;
  absl::StatusOr<std::unique_ptr<ChildProcess>> server =
      testing::StartRepositoryServer(repository, {}, &address);
  TDA_ASSERT_OK(server);
  absl::StatusOr<std::unique_ptr<ChildProcess>> single =
      testing::StartTdaServer(*mlp, "127.0.0.1:0", {}, &single_address);
  TDA_ASSERT_OK(single);

  const std::vector<Query> query = {Query{"fashion-mnist/test/0", {}, -1, {}}};
  auto names_served = AllOf(HasSubstr("'gamma'"), HasSubstr("alpha, beta"));
  std::unique_ptr<RemoteAttributor> unknown = Connect(address, "gamma");
  ASSERT_NE(unknown, nullptr);
  EXPECT_THAT(unknown->Attribute(query, {}), StatusIs(absl::StatusCode::kNotFound, names_served));
  EXPECT_THAT(unknown->Describe(), StatusIs(absl::StatusCode::kNotFound, names_served));
  EXPECT_THAT(unknown->GetSample("fashion-mnist/test/0"),
              StatusIs(absl::StatusCode::kNotFound, names_served));
  std::unique_ptr<RemoteAttributor> unnamed = Connect(address, "");
  ASSERT_NE(unnamed, nullptr);
  auto name_one = AllOf(HasSubstr("serves 2 indexes"), HasSubstr("index field"));
  EXPECT_THAT(unnamed->Attribute(query, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, name_one));
  EXPECT_THAT(unnamed->Describe(), StatusIs(absl::StatusCode::kInvalidArgument, name_one));
  EXPECT_THAT(unnamed->GetSample("fashion-mnist/test/0"),
              StatusIs(absl::StatusCode::kInvalidArgument, name_one));
  std::unique_ptr<RemoteAttributor> beta = Connect(address, "beta");
  ASSERT_NE(beta, nullptr);
  EXPECT_TRUE(beta->Attribute(query, {}).ok());

  // One index served: the name is optional, and a wrong one is still NOT_FOUND.
  std::unique_ptr<RemoteAttributor> single_unnamed = Connect(single_address, "");
  std::unique_ptr<RemoteAttributor> single_named = Connect(single_address, "index");
  std::unique_ptr<RemoteAttributor> single_wrong = Connect(single_address, "alpha");
  ASSERT_TRUE(single_unnamed && single_named && single_wrong);
  EXPECT_TRUE(single_unnamed->Attribute(query, {}).ok());
  EXPECT_TRUE(single_named->Attribute(query, {}).ok());
  EXPECT_THAT(single_wrong->Attribute(query, {}),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("served: index")));

  // Bad flags are usage errors before anything is served.
  const testing::CommandResult both = testing::Shell(std::string(TDA_SERVER_BINARY) + " --index " +
                                                     *mlp + " --repository " + repository);
  EXPECT_EQ(both.exit_code, 2);
  EXPECT_THAT(both.stdout_text, HasSubstr("exactly one of --index DIR, --repository DIR or --router SHARDMAP"));
  const testing::CommandResult bad_pin = testing::Shell(
      std::string(TDA_SERVER_BINARY) + " --repository " + repository + " --pin alpha=01");
  EXPECT_EQ(bad_pin.exit_code, 2);
  EXPECT_THAT(bad_pin.stdout_text, HasSubstr("NAME=VERSION"));
}

// An ensemble index built by the CLI (member 1 trained now by the model's recipe), served
// beside its own members: its scores are their mean, its first member alone is member 0.
TEST(RepositoryServing, AnEnsembleAnswersWithTheMeanOfItsMembers) {
  testing::TempDir dir;
  TDA_ASSERT_OK(testing::BuildSmallIndex(dir.path()));
  const std::string ensemble = dir.file("ensemble");
  const testing::CommandResult built =
      testing::Shell(std::string(TDA_CLI_BINARY) + " index build --model " + dir.file("model") +
                     " --out " + ensemble + " --ensemble 2 --projection-dim 4 --threads 1");
  ASSERT_EQ(built.exit_code, 0) << built.stdout_text;
  EXPECT_THAT(built.stdout_text, HasSubstr("ensemble index of 2 models"));
  const testing::CommandResult verified =
      testing::Shell(std::string(TDA_CLI_BINARY) + " index verify --index " + ensemble);
  EXPECT_EQ(verified.exit_code, 0) << verified.stdout_text;
  EXPECT_THAT(verified.stdout_text, HasSubstr("member-01/"));
  const std::string repository = dir.file("repository");
  TDA_ASSERT_OK(testing::AddVersion(repository, "ensemble", 1, ensemble));
  TDA_ASSERT_OK(testing::AddVersion(repository, "m0", 1, ensemble + "/member-00"));
  TDA_ASSERT_OK(testing::AddVersion(repository, "m1", 1, ensemble + "/member-01"));
  std::string address;
  absl::StatusOr<std::unique_ptr<ChildProcess>> server =
      testing::StartRepositoryServer(repository, {}, &address);
  TDA_ASSERT_OK(server);
  std::unique_ptr<RemoteAttributor> both = Connect(address, "ensemble");
  std::unique_ptr<RemoteAttributor> m0 = Connect(address, "m0");
  std::unique_ptr<RemoteAttributor> m1 = Connect(address, "m1");
  ASSERT_TRUE(both && m0 && m1);
  absl::StatusOr<v1::DescribeIndexResponse> described = both->Describe();
  TDA_ASSERT_OK(described);
  EXPECT_EQ(described->ensemble_size(), 2);
  absl::StatusOr<v1::DescribeIndexResponse> member_described = m0->Describe();
  TDA_ASSERT_OK(member_described);
  EXPECT_EQ(member_described->ensemble_size(), 1);
  EXPECT_EQ(described->gradient_bytes(), 2 * member_described->gradient_bytes());

  v1::AttributeRequest request = SampleRequest();
  request.set_group_by_document(false);
  absl::StatusOr<v1::AttributeResponse> mean = both->AttributeRaw(request);
  absl::StatusOr<v1::AttributeResponse> first = m0->AttributeRaw(request);
  absl::StatusOr<v1::AttributeResponse> second = m1->AttributeRaw(request);
  TDA_ASSERT_OK(mean);
  TDA_ASSERT_OK(first);
  TDA_ASSERT_OK(second);
  for (int q = 0; q < request.queries_size(); ++q) {
    const v1::QueryResult& got = mean->results(q);
    ASSERT_EQ(got.scores_size(), first->results(q).scores_size());
    double largest = 0, error = 0, disagreement = 0;
    for (int r = 0; r < got.scores_size(); ++r) {
      const double want = (first->results(q).scores(r) + second->results(q).scores(r)) / 2;
      largest = std::max(largest, std::abs(want));
      error = std::max(error, std::abs(got.scores(r) - want));
      disagreement = std::max(disagreement, std::abs(first->results(q).scores(r) - want));
    }
    EXPECT_LT(error, 1e-5 * largest) << q;
    EXPECT_GT(disagreement, 1e-2 * largest) << q;  // two models, two rankings
    ASSERT_GT(got.proponents_size(), 0);
    EXPECT_NEAR(got.proponents(0).score(), got.scores(got.proponents(0).row()), 1e-6 * largest);
  }
  request.set_ensemble_members(1);
  absl::StatusOr<v1::AttributeResponse> one = both->AttributeRaw(request);
  TDA_ASSERT_OK(one);
  EXPECT_TRUE(MessageDifferencer::Equals(*one, *first));
  request.set_ensemble_members(3);
  EXPECT_THAT(both->AttributeRaw(request),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("1 to 2")));

  const testing::CommandResult describe = testing::Shell(
      std::string(TDA_CLI_BINARY) + " describe --server " + address + " --index-name ensemble");
  EXPECT_EQ(describe.exit_code, 0) << describe.stdout_text;
  EXPECT_THAT(describe.stdout_text, HasSubstr("ensemble:   2 models"));
}

TEST(RepositoryServing, EveryCallIsLoggedOnceAsJson) {
  testing::TempDir dir;
  absl::StatusOr<std::string> mlp = testing::BuildSmallIndex(dir.path());
  TDA_ASSERT_OK(mlp);
  const std::string repository = dir.file("repository"), log = dir.file("server.log");
  TDA_ASSERT_OK(testing::AddVersion(repository, "alpha", 1, *mlp));
  TDA_ASSERT_OK(testing::AddVersion(repository, "beta", 1, *mlp));
  absl::StatusOr<std::unique_ptr<ChildProcess>> server = ChildProcess::Start(
      {"/bin/sh", "-c",
       std::string("exec ") + TDA_SERVER_BINARY + " --repository " + repository +
           " --listen 127.0.0.1:0 --threads 1 --repository-poll-seconds 0 2> " + log});
  TDA_ASSERT_OK(server);
  absl::StatusOr<std::string> line = (*server)->ReadLineContaining("tda-server listening on ", 120);
  TDA_ASSERT_OK(line);
  const std::string address = line->substr(line->rfind(' ') + 1);
  std::unique_ptr<RemoteAttributor> alpha = Connect(address, "alpha");
  std::unique_ptr<RemoteAttributor> gamma = Connect(address, "gamma");
  ASSERT_TRUE(alpha && gamma);
  const std::vector<Query> two = {Query{"fashion-mnist/test/0", {}, -1, {}},
                                  Query{"fashion-mnist/test/1", {}, -1, {}}};
  TDA_ASSERT_OK(alpha->Attribute(two, {}));
  EXPECT_FALSE(gamma->Attribute(two, {}).ok());
  TDA_ASSERT_OK(alpha->Describe());
  TDA_ASSERT_OK(alpha->ListIndexes());
  TDA_ASSERT_OK(alpha->CheckHealth());  // health checks are not logged
  (*server)->Signal(SIGTERM);
  TDA_ASSERT_OK((*server)->Wait(30));

  std::vector<nlohmann::json> calls;
  std::istringstream lines(testing::ReadText(log));
  for (std::string text; std::getline(lines, text);) {
    if (text.rfind("{\"call_log\"", 0) == 0) calls.push_back(nlohmann::json::parse(text));
  }
  ASSERT_EQ(calls.size(), 4u) << testing::ReadText(log);
  const std::vector<std::string> rpcs = {"Attribute", "Attribute", "DescribeIndex", "ListIndexes"};
  const std::vector<std::string> statuses = {"OK", "NOT_FOUND", "OK", "OK"};
  std::set<int64_t> ids;
  for (size_t i = 0; i < calls.size(); ++i) {
    const nlohmann::json& call = calls[i];
    SCOPED_TRACE(call.dump());
    ids.insert(call.at("request_id").get<int64_t>());
    EXPECT_EQ(call.at("rpc"), "/tda.v1.AttributionService/" + rpcs[i]);
    EXPECT_EQ(call.at("status"), statuses[i]);
    EXPECT_EQ(call.at("caller"), "anonymous");
    EXPECT_THAT(call.at("peer").get<std::string>(), HasSubstr("127.0.0.1"));
    EXPECT_GE(call.at("latency_ms").get<double>(), 0);
    if (i < 2) {
      EXPECT_EQ(call.at("queries"), 2);
    }
  }
  EXPECT_EQ(calls[0].at("index"), "alpha");
  EXPECT_EQ(calls[1].at("index"), "gamma");
  EXPECT_EQ(calls[2].at("index"), "alpha");
  EXPECT_FALSE(calls[3].contains("index"));
  EXPECT_EQ(ids.size(), 4u);
}

}  // namespace
}  // namespace tda
