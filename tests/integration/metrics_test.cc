// tda-server --metrics-listen against the real binary over loopback: after known calls (queries
// that succeed, a query of an unknown name, a job, an unload and a reload), GET /metrics is
// scraped over real HTTP and parsed by Debian's python3-prometheus-client
// (tests/python/metrics_check.py): the counts equal the calls made, by rpc, index and code;
// histograms are cumulative with _count equal to the calls; the index rows equal the index's;
// the finished job is counted. On the way, `tda admin unload` takes the name out of service
// (NOT_FOUND saying it was unloaded, and the poller does not bring it back) until
// `tda admin reload` serves it again.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "client/remote_attributor.h"
#include "repository_support.h"
#include "tda/v1/admin.grpc.pb.h"
#include "tda/v1/jobs.grpc.pb.h"
#include "team_server.h"
#include "test_support.h"

namespace tda {
namespace {

using ::tda::testing::ChildProcess;
using ::tda::testing::StatusIs;
using ::testing::HasSubstr;

const std::vector<Query> kQuery = {Query{"fashion-mnist/test/0", {}, -1, {}}};
constexpr char kAttribute[] = "/tda.v1.AttributionService/Attribute";

std::unique_ptr<RemoteAttributor> ConnectTo(const std::string& address, const std::string& name) {
  RemoteAttributor::Options options;
  options.index_name = name;
  absl::StatusOr<std::unique_ptr<RemoteAttributor>> remote =
      RemoteAttributor::Connect(address, options);
  EXPECT_TRUE(remote.ok()) << remote.status();
  return remote.ok() ? std::move(*remote) : nullptr;
}

nlohmann::json Sample(const std::string& name, nlohmann::json labels, double value) {
  return {{"name", name}, {"labels", std::move(labels)}, {"value", value}};
}

nlohmann::json Requests(const std::string& rpc, const std::string& index, const std::string& code,
                        double calls) {
  return Sample("tda_requests_total", {{"rpc", rpc}, {"index", index}, {"code", code}}, calls);
}

TEST(Metrics, ScrapedCountsMatchTheCallsAndUnloadHoldsUntilReload) {
  testing::TempDir dir;
  absl::StatusOr<std::string> index = testing::BuildSmallIndex(dir.path());
  TDA_ASSERT_OK(index);
  const std::string repository = dir.file("repository");
  TDA_ASSERT_OK(testing::AddVersion(repository, "fmnist", 1, *index));
  std::string address;
  absl::StatusOr<std::unique_ptr<ChildProcess>> server = testing::StartRepositoryServer(
      repository,
      {"--repository-poll-seconds", "0.2", "--metrics-listen", "127.0.0.1:0", "--state-dir",
       dir.file("state"), "--data-root", dir.path(), "--output-root", dir.path()},
      &address);
  TDA_ASSERT_OK(server);
  absl::StatusOr<std::string> line = (*server)->ReadLineContaining("tda-server metrics on ", 30);
  TDA_ASSERT_OK(line);
  const std::string url = line->substr(line->rfind(' ') + 1);

  std::unique_ptr<RemoteAttributor> remote = ConnectTo(address, "fmnist");
  ASSERT_NE(remote, nullptr);
  for (int i = 0; i < 3; ++i) TDA_ASSERT_OK(remote->Attribute(kQuery, {}));
  absl::StatusOr<v1::DescribeIndexResponse> description = remote->Describe();
  TDA_ASSERT_OK(description);
  std::unique_ptr<RemoteAttributor> unknown = ConnectTo(address, "no-such-index");
  ASSERT_NE(unknown, nullptr);
  EXPECT_THAT(unknown->Attribute(kQuery, {}),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no-such-index")));

  // A short job, to its end.
  const std::shared_ptr<grpc::Channel> channel =
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  std::unique_ptr<v1::JobService::Stub> jobs = v1::JobService::NewStub(channel);
  v1::Job job;
  {
    grpc::ClientContext context;
    v1::SubmitJobRequest request;
    request.set_kind("sleep");
    request.set_spec_json(R"({"seconds": 0.05})");
    const grpc::Status submitted = jobs->SubmitJob(&context, request, &job);
    ASSERT_TRUE(submitted.ok()) << submitted.error_message();
  }
  int get_job_calls = 0;
  ASSERT_TRUE(testing::WaitUntil(
      [&] {
        grpc::ClientContext context;
        v1::GetJobRequest request;
        request.set_id(job.id());
        ++get_job_calls;
        return jobs->GetJob(&context, request, &job).ok() && job.state() == v1::JOB_STATE_SUCCEEDED;
      },
      30));

  // Unload: NOT_FOUND saying so, and the poller (every 0.2 s) leaves it unloaded.
  const std::string cli = std::string(TDA_CLI_BINARY) + " admin ";
  testing::CommandResult unloaded = testing::Shell(cli + "unload --server " + address + " fmnist");
  EXPECT_EQ(unloaded.exit_code, 0) << unloaded.stdout_text;
  EXPECT_THAT(unloaded.stdout_text, HasSubstr("index fmnist version 1: UNLOADED"));
  {
    grpc::ClientContext context;
    v1::UnloadIndexRequest request;
    request.set_index("fmnistx");
    v1::ListIndexesResponse indexes;
    const grpc::Status missing =
        v1::AdminService::NewStub(channel)->UnloadIndex(&context, request, &indexes);
    EXPECT_EQ(missing.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_THAT(missing.error_message(), HasSubstr("no index named 'fmnistx'"));
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));
  EXPECT_THAT(remote->Attribute(kQuery, {}),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("'fmnist' was unloaded")));
  // Reload serves it again (a fresh load of its newest version).
  testing::CommandResult reloaded = testing::Shell(cli + "reload --server " + address);
  EXPECT_EQ(reloaded.exit_code, 0) << reloaded.stdout_text;
  EXPECT_THAT(reloaded.stdout_text, HasSubstr("index fmnist version 1: SERVING"));
  TDA_ASSERT_OK(remote->Attribute(kQuery, {}));

  const nlohmann::json expected = {
      {"url", url},
      {"samples",
       {Requests(kAttribute, "fmnist", "OK", 4), Requests(kAttribute, "fmnist", "NOT_FOUND", 1),
        Requests(kAttribute, "unknown", "NOT_FOUND", 1),
        Requests("/tda.v1.AttributionService/DescribeIndex", "fmnist", "OK", 1),
        Requests("/tda.v1.JobService/SubmitJob", "", "OK", 1),
        Requests("/tda.v1.JobService/GetJob", "", "OK", get_job_calls),
        Requests("/tda.v1.AdminService/UnloadIndex", "fmnist", "OK", 1),
        Requests("/tda.v1.AdminService/UnloadIndex", "unknown", "NOT_FOUND", 1),
        Requests("/tda.v1.AdminService/ReloadTokens", "", "FAILED_PRECONDITION", 1),
        Requests("/tda.v1.AdminService/ReloadIndexes", "", "OK", 1),
        Sample("tda_index_rows", {{"index", "fmnist"}, {"version", "1"}},
               static_cast<double>(description->rows())),
        Sample("tda_index_versions", {{"index", "fmnist"}, {"state", "serving"}}, 1),
        Sample("tda_index_loads_total", {{"index", "fmnist"}, {"result", "ok"}}, 2),
        Sample("tda_index_loads_total", {{"index", "fmnist"}, {"result", "failed"}}, 0),
        Sample("tda_index_swaps_total", {{"index", "fmnist"}}, 0),
        Sample("tda_jobs", {{"state", "succeeded"}}, 1),
        Sample("tda_jobs", {{"state", "running"}}, 0),
        // The 4 answered Attribute calls, each computed alone (one after another).
        Sample("tda_attribute_batch_queries_count", {{"index", "fmnist"}}, 4)}}};
  const std::string expected_file = dir.file("expected.json");
  std::ofstream(expected_file) << expected.dump(2);
  const testing::CommandResult check =
      testing::Shell(absl::StrCat(TDA_PYTHON, " ", TDA_METRICS_CHECK, " ", expected_file), 60);
  std::cout << check.stdout_text;
  EXPECT_EQ(check.exit_code, 0) << check.stdout_text;
}

}  // namespace
}  // namespace tda
