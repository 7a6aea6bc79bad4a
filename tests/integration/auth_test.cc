// Bearer tokens and roles through the real tda-server binary on loopback: every RPC of every
// tda service refuses a call without a token (UNAUTHENTICATED) and a token of too low a role
// (PERMISSION_DENIED naming the role) and lets the right role through to its handler; health
// and reflection need no token; tokens made by `tda admin token create` work and never reach
// the file; a token revoked in the file stops working on SIGHUP while another token's open
// connection keeps working; jobs record their submitter, readers see only theirs without
// paths, operators cancel only their own, and the per-submitter quota holds. Also the safe
// defaults: a network address without TLS and tokens is refused unless --insecure; and the
// CLI fails fast on a refused connection and refuses a bad port as a usage error.
#include <gmock/gmock.h>
#include <google/protobuf/descriptor.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/atomic_file.h"
#include "tda/v1/admin.grpc.pb.h"
#include "tda/v1/attribution.grpc.pb.h"
#include "tda/v1/jobs.grpc.pb.h"
#include "team_server.h"
#include "test_support.h"

namespace tda {
namespace {

using ::tda::testing::ChildProcess;
using ::tda::testing::CommandResult;
using ::testing::HasSubstr;
using ::testing::Not;
using Clock = std::chrono::steady_clock;

constexpr const char* kRoles[] = {"reader", "operator", "admin"};
constexpr int kJobQuota = 2;

std::string Cli(const std::string& args) { return absl::StrCat(TDA_CLI_BINARY, " ", args); }

// The token that `tda admin token create` prints on stdout (the note goes to stderr).
std::string CreateTokenWithCli(const std::string& file, const std::string& name,
                               const std::string& role) {
  absl::StatusOr<testing::CommandResult> result = testing::RunCommand(
      {TDA_CLI_BINARY, "admin", "token", "create", name, "--role", role, "--file", file}, 30);
  EXPECT_TRUE(result.ok() && result->exit_code == 0) << name;
  if (!result.ok()) return "";
  std::string token = result->stdout_text;
  while (!token.empty() && (token.back() == '\n' || token.back() == ' ')) token.pop_back();
  return token;
}

class AuthTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    absl::StatusOr<std::string> index = testing::BuildSmallIndex(dir_->path());
    TDA_ASSERT_OK(index);
    index_dir_ = *index;
    tokens_file_ = dir_->file("tokens");
    for (const char* role : kRoles) tokens_[role] = CreateTokenWithCli(tokens_file_, role, role);
    tokens_["reader2"] = CreateTokenWithCli(tokens_file_, "reader2", "reader");
    tokens_["operator2"] = CreateTokenWithCli(tokens_file_, "operator2", "operator");
    absl::StatusOr<std::unique_ptr<ChildProcess>> server =
        testing::StartTdaServer(index_dir_, "127.0.0.1:0",
                                {"--auth-tokens", tokens_file_, "--state-dir", dir_->file("state"),
                                 "--job-quota", std::to_string(kJobQuota)},
                                &address_);
    TDA_ASSERT_OK(server);
    server_ = server->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    delete dir_;
  }
  void SetUp() override { ASSERT_NE(server_, nullptr) << "suite setup failed"; }

  // One channel per token (a connection carries one token).
  static std::shared_ptr<grpc::Channel> ChannelFor(const std::string& who) {
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        testing::TokenChannel(address_, who.empty() ? "" : tokens_.at(who));
    EXPECT_TRUE(channel.ok()) << channel.status();
    return channel.ok() ? *channel : nullptr;
  }

  static v1::Job SubmitSleep(const std::string& who, double seconds, grpc::Status* status) {
    v1::SubmitJobRequest request;
    request.set_kind("sleep");
    request.set_spec_json(absl::StrCat(R"({"seconds":)", seconds, "}"));
    v1::Job job;
    grpc::ClientContext context;
    *status = v1::JobService::NewStub(ChannelFor(who))->SubmitJob(&context, request, &job);
    return job;
  }

  static inline testing::TempDir* dir_ = nullptr;
  static inline ChildProcess* server_ = nullptr;
  static inline std::string index_dir_, tokens_file_, address_;
  static inline std::map<std::string, std::string> tokens_;
};

// Every method of the services tda-server registers, with the role the table gives it.
std::vector<std::pair<std::string, int>> AllMethods() {
  v1::DescribeIndexRequest::descriptor();  // links the descriptors of the three files
  v1::GetJobRequest::descriptor();
  v1::ReloadTokensRequest::descriptor();
  std::vector<std::pair<std::string, int>> methods;
  const std::map<std::string, int> expected_role = {
      {"Attribute", 0},      {"DescribeIndex", 0}, {"GetSample", 0},      {"GetJob", 0},
      {"ListJobs", 0},       {"WatchJob", 0},      {"SubmitJob", 1},      {"CancelJob", 1},
      {"CreateSchedule", 1}, {"ListSchedules", 1}, {"DeleteSchedule", 1}, {"ReloadTokens", 2},
      {"ListIndexes", 0},    {"ReloadIndexes", 2}, {"SelfInfluence", 0}, {"UnloadIndex", 2}};
  for (const char* name :
       {v1::AttributionService::service_full_name(), v1::JobService::service_full_name(),
        v1::AdminService::service_full_name()}) {
    const google::protobuf::ServiceDescriptor* service =
        google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(name);
    for (int i = 0; i < service->method_count(); ++i) {
      const std::string method = service->method(i)->name();
      EXPECT_EQ(expected_role.count(method), 1u) << method << ": add it to this test";
      methods.push_back({"/" + std::string(name) + "/" + method,
                         expected_role.count(method) ? expected_role.at(method) : 2});
    }
  }
  return methods;
}

TEST_F(AuthTest, EveryRpcNeedsATokenOfItsRole) {
  std::map<std::string, std::shared_ptr<grpc::Channel>> channels;
  channels[""] = ChannelFor("");
  for (const char* role : kRoles) channels[role] = ChannelFor(role);
  for (const auto& [method, required] : AllMethods()) {
    SCOPED_TRACE(method);
    grpc::Status none = testing::CallRaw(channels[""].get(), method);
    EXPECT_EQ(none.error_code(), grpc::StatusCode::UNAUTHENTICATED) << none.error_message();
    for (int r = 0; r < 3; ++r) {
      grpc::Status status = testing::CallRaw(channels[kRoles[r]].get(), method);
      if (r < required) {
        EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << kRoles[r];
        EXPECT_THAT(status.error_message(),
                    HasSubstr(absl::StrCat("needs role ", kRoles[required])));
      } else {
        // The handler ran: OK or its own error for the empty request.
        EXPECT_NE(status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
            << kRoles[r] << ": " << status.error_message();
        EXPECT_NE(status.error_code(), grpc::StatusCode::PERMISSION_DENIED)
            << kRoles[r] << ": " << status.error_message();
      }
    }
  }
  // A wrong token is UNAUTHENTICATED too.
  absl::StatusOr<std::shared_ptr<grpc::Channel>> wrong =
      testing::TokenChannel(address_, "tda_" + std::string(64, '0'));
  TDA_ASSERT_OK(wrong);
  grpc::Status status = testing::CallRaw(wrong->get(), "/tda.v1.AttributionService/DescribeIndex");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(status.error_message(), HasSubstr("unknown or revoked token"));
}

TEST_F(AuthTest, HealthAndReflectionNeedNoToken) {
  std::shared_ptr<grpc::Channel> anonymous = ChannelFor("");
  std::string response;
  grpc::Status health =
      testing::CallRaw(anonymous.get(), "/grpc.health.v1.Health/Check", "", &response);
  EXPECT_TRUE(health.ok()) << health.error_message();
  EXPECT_EQ(response, std::string("\x08\x01", 2));  // status: SERVING
  // ServerReflectionRequest{list_services: ""} (field 7).
  grpc::Status reflection = testing::CallRaw(
      anonymous.get(), "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
      std::string("\x3a\x00", 2), &response);
  EXPECT_TRUE(reflection.ok()) << reflection.error_message();
  EXPECT_THAT(response, HasSubstr("tda.v1.JobService"));
  EXPECT_THAT(response, HasSubstr("tda.v1.AdminService"));
}

TEST_F(AuthTest, TheTokenFileHoldsOnlyHashesAndTheCliTokenWorks) {
  std::string text;
  TDA_ASSERT_OK(ReadFile(tokens_file_, &text));
  for (const auto& [name, token] : tokens_) {
    ASSERT_FALSE(token.empty()) << name;
    EXPECT_EQ(text.find(token), std::string::npos) << name;
    EXPECT_EQ(text.find(token.substr(4)), std::string::npos) << name;
  }
  const CommandResult listed = testing::Shell(Cli("admin token list --file " + tokens_file_));
  EXPECT_EQ(listed.exit_code, 0);
  EXPECT_THAT(listed.stdout_text, HasSubstr("operator2"));
  EXPECT_THAT(listed.stdout_text, Not(HasSubstr(tokens_.at("operator2"))));
  const CommandResult duplicate =
      testing::Shell(Cli("admin token create reader --role admin --file " + tokens_file_));
  EXPECT_NE(duplicate.exit_code, 0);
  EXPECT_THAT(duplicate.stdout_text, HasSubstr("already"));
  // The CLI with the printed token (through the environment), and without it.
  const CommandResult with_token = testing::Shell("TDA_TOKEN=" + tokens_.at("reader") + " " +
                                                  Cli("describe --server " + address_));
  EXPECT_EQ(with_token.exit_code, 0) << with_token.stdout_text;
  EXPECT_THAT(with_token.stdout_text, HasSubstr("rows"));
  const CommandResult without = testing::Shell(Cli("describe --server " + address_));
  EXPECT_NE(without.exit_code, 0);
  EXPECT_THAT(without.stdout_text, HasSubstr("no token"));
  const std::string token_file = dir_->file("reader.token");
  TDA_ASSERT_OK(WriteFileAtomically(token_file, tokens_.at("reader") + "\n"));
  const CommandResult from_file =
      testing::Shell(Cli("jobs list --server " + address_ + " --token-file " + token_file));
  EXPECT_EQ(from_file.exit_code, 0) << from_file.stdout_text;
  EXPECT_THAT(from_file.stdout_text, HasSubstr("submitter"));
  // tda admin reload: admins only.
  const CommandResult reload_as_admin = testing::Shell(
      Cli("admin reload --server " + address_ + " --token " + tokens_.at("admin")));
  EXPECT_EQ(reload_as_admin.exit_code, 0) << reload_as_admin.stdout_text;
  EXPECT_THAT(reload_as_admin.stdout_text, HasSubstr("accepts 5 token(s)"));
  const CommandResult reload_as_reader =
      testing::Shell(Cli("admin reload --server " + address_ + " --token-file " + token_file));
  EXPECT_EQ(reload_as_reader.exit_code, 1);
  EXPECT_THAT(reload_as_reader.stdout_text, HasSubstr("needs role admin"));
}

TEST_F(AuthTest, ARevokedTokenStopsOnSighupAndOtherConnectionsKeepWorking) {
  const std::string victim = tokens_.at("reader2");
  absl::StatusOr<std::shared_ptr<grpc::Channel>> victim_channel =
      testing::TokenChannel(address_, victim);
  TDA_ASSERT_OK(victim_channel);
  std::shared_ptr<grpc::Channel> other = ChannelFor("operator2");
  const std::string describe = "/tda.v1.AttributionService/DescribeIndex";
  ASSERT_TRUE(testing::CallRaw(victim_channel->get(), describe).ok());
  ASSERT_TRUE(testing::CallRaw(other.get(), describe).ok());

  const CommandResult revoked =
      testing::Shell(Cli("admin token revoke reader2 --file " + tokens_file_));
  ASSERT_EQ(revoked.exit_code, 0) << revoked.stdout_text;
  server_->Signal(SIGHUP);
  grpc::Status status;
  const auto start = Clock::now();
  do {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    status = testing::CallRaw(victim_channel->get(), describe);
  } while (status.ok() && Clock::now() - start < std::chrono::seconds(10));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << status.error_message();
  // The other token's connection was never dropped and still works; so does a new one.
  EXPECT_EQ(other->GetState(false), GRPC_CHANNEL_READY);
  EXPECT_TRUE(testing::CallRaw(other.get(), describe).ok());
  EXPECT_TRUE(testing::CallRaw(ChannelFor("operator").get(), describe).ok());
  // A malformed file on reload keeps the tokens in force.
  std::string text;
  TDA_ASSERT_OK(ReadFile(tokens_file_, &text));
  TDA_ASSERT_OK(WriteFileAtomically(tokens_file_, text + "broken line\n"));
  server_->Signal(SIGHUP);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_TRUE(testing::CallRaw(ChannelFor("reader").get(), describe).ok());
  // The admin RPC reports the bad file; restoring it reloads.
  v1::ReloadTokensResponse reloaded;
  grpc::ClientContext context;
  grpc::Status reload =
      v1::AdminService::NewStub(ChannelFor("admin"))->ReloadTokens(&context, {}, &reloaded);
  EXPECT_EQ(reload.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(reload.error_message(), HasSubstr(tokens_file_ + ":"));
  TDA_ASSERT_OK(WriteFileAtomically(tokens_file_, text));
  grpc::ClientContext again;
  EXPECT_TRUE(
      v1::AdminService::NewStub(ChannelFor("admin"))->ReloadTokens(&again, {}, &reloaded).ok());
  EXPECT_EQ(reloaded.tokens(), 4);
}

TEST_F(AuthTest, OneTokenPerConnection) {
  // A reader's connection cannot be upgraded by sending the admin token on it.
  v1::ReloadTokensResponse response;
  absl::StatusOr<std::shared_ptr<grpc::Channel>> plain = testing::TokenChannel(address_, "");
  TDA_ASSERT_OK(plain);
  grpc::ClientContext as_reader, as_admin;
  as_reader.AddMetadata("authorization", "Bearer " + tokens_.at("reader"));
  as_admin.AddMetadata("authorization", "Bearer " + tokens_.at("admin"));
  v1::ListJobsResponse jobs;
  ASSERT_TRUE(v1::JobService::NewStub(*plain)->ListJobs(&as_reader, {}, &jobs).ok());
  grpc::Status status = v1::AdminService::NewStub(*plain)->ReloadTokens(&as_admin, {}, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("one token per connection"));
}

TEST_F(AuthTest, JobsRecordSubmittersReadersSeeTheirsOperatorsCancelTheirs) {
  grpc::Status status;
  const v1::Job mine = SubmitSleep("operator", 30, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(mine.submitter(), "operator");
  // Another operator may not cancel it; an admin may.
  grpc::ClientContext other_context;
  v1::CancelJobRequest cancel;
  cancel.set_id(mine.id());
  v1::Job cancelled;
  status = v1::JobService::NewStub(ChannelFor("operator2"))
               ->CancelJob(&other_context, cancel, &cancelled);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(status.error_message(), HasSubstr("admin"));
  // A reader does not see another's job (nor its existence); operators see it with paths.
  grpc::ClientContext reader_context;
  v1::GetJobRequest get;
  get.set_id(mine.id());
  v1::Job seen;
  status = v1::JobService::NewStub(ChannelFor("reader"))->GetJob(&reader_context, get, &seen);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  v1::ListJobsResponse listed;
  grpc::ClientContext list_context;
  ASSERT_TRUE(
      v1::JobService::NewStub(ChannelFor("reader"))->ListJobs(&list_context, {}, &listed).ok());
  for (const v1::Job& job : listed.jobs()) EXPECT_EQ(job.submitter(), "reader");
  // The quota: kJobQuota active jobs per submitter.
  for (int i = 1; i < kJobQuota; ++i) {
    SubmitSleep("operator", 30, &status);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  SubmitSleep("operator", 30, &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  SubmitSleep("admin", 30, &status);  // another submitter has its own quota
  EXPECT_TRUE(status.ok()) << status.error_message();
  const CommandResult table = testing::Shell("TDA_TOKEN=" + tokens_.at("admin") + " " +
                                             Cli("jobs list --server " + address_));
  EXPECT_THAT(table.stdout_text, HasSubstr("submitter"));
  EXPECT_THAT(table.stdout_text, HasSubstr("operator"));
  // The owner cancels its own jobs; the admin cancels any.
  grpc::ClientContext own_context;
  status =
      v1::JobService::NewStub(ChannelFor("operator"))->CancelJob(&own_context, cancel, &cancelled);
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST_F(AuthTest, ReadersSeeNamesNotPaths) {
  v1::DescribeIndexResponse as_reader, as_operator;
  grpc::ClientContext c1, c2;
  ASSERT_TRUE(v1::AttributionService::NewStub(ChannelFor("reader"))
                  ->DescribeIndex(&c1, {}, &as_reader)
                  .ok());
  ASSERT_TRUE(v1::AttributionService::NewStub(ChannelFor("operator"))
                  ->DescribeIndex(&c2, {}, &as_operator)
                  .ok());
  EXPECT_THAT(as_operator.data_dir(), HasSubstr("/"));
  EXPECT_THAT(as_reader.data_dir(), Not(HasSubstr("/")));
  EXPECT_FALSE(as_reader.data_dir().empty());
}

TEST(SafeDefaultsTest, ANetworkAddressWithoutTlsAndTokensIsRefusedUnlessInsecure) {
  testing::TempDir dir;
  const std::string base =
      absl::StrCat(TDA_SERVER_BINARY, " --index ", dir.path(), "/no-index --listen ");
  const CommandResult refused = testing::Shell(base + "0.0.0.0:0");
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_THAT(refused.stdout_text, HasSubstr("refusing to listen on the non-loopback address"));
  EXPECT_THAT(refused.stdout_text, HasSubstr("--insecure"));
  EXPECT_THAT(refused.stdout_text, HasSubstr("--tls-cert"));
  const CommandResult ipv6 = testing::Shell(base + "[::]:0");
  EXPECT_NE(ipv6.exit_code, 0);
  EXPECT_THAT(ipv6.stdout_text, HasSubstr("refusing"));
  const CommandResult tokens_in_clear =
      testing::Shell(base + "0.0.0.0:0 --insecure --auth-tokens " + dir.file("t"));
  EXPECT_NE(tokens_in_clear.exit_code, 0);
  EXPECT_THAT(tokens_in_clear.stdout_text, HasSubstr("clear text"));
}

TEST_F(AuthTest, InsecureNetworkListeningWorksAndSaysSoLoudly) {
  std::string address;
  const std::string log = dir_->file("insecure.log");
  absl::StatusOr<std::unique_ptr<ChildProcess>> child =
      ChildProcess::Start({"/bin/sh", "-c",
                           absl::StrCat("exec ", TDA_SERVER_BINARY, " --index ", index_dir_,
                                        " --listen 0.0.0.0:0 --threads 1 --insecure 2>", log)});
  TDA_ASSERT_OK(child);
  absl::StatusOr<std::string> line = (*child)->ReadLineContaining("listening on", 60);
  TDA_ASSERT_OK(line);
  std::string text;
  TDA_ASSERT_OK(ReadFile(log, &text));
  EXPECT_THAT(text, HasSubstr("WARNING: INSECURE"));
  const std::string port = line->substr(line->rfind(':') + 1);
  const CommandResult describe = testing::Shell(Cli("describe --server 127.0.0.1:" + port));
  EXPECT_EQ(describe.exit_code, 0) << describe.stdout_text;
}

int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  socklen_t length = sizeof(address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);  // nothing listens there now
  return ntohs(address.sin_port);
}

TEST(ClientConnectionTest, ARefusedConnectionFailsFast) {
  const std::string server = absl::StrCat("127.0.0.1:", FreePort());
  for (const std::string& command : {"describe --server " + server, "jobs list --server " + server,
                                     "query --server " + server + " --id fashion-mnist/test/0"}) {
    const auto start = Clock::now();
    const CommandResult result = testing::Shell(Cli(command));
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    EXPECT_EQ(result.exit_code, 1) << command << ": " << result.stdout_text;
    EXPECT_LT(seconds, 2.0) << command;
    EXPECT_THAT(result.stdout_text, HasSubstr("connection refused")) << command;
  }
}

TEST(ClientConnectionTest, AnInvalidPortIsAUsageError) {
  for (const char* server : {"127.0.0.1:99999", "127.0.0.1:http", "127.0.0.1:", "nohost"}) {
    for (const std::string& command : {std::string("describe --server ") + server,
                                       std::string("jobs list --server ") + server}) {
      const CommandResult result = testing::Shell(Cli(command));
      EXPECT_EQ(result.exit_code, 2) << command << ": " << result.stdout_text;
      EXPECT_THAT(result.stdout_text, HasSubstr("--server")) << command;
    }
  }
}

}  // namespace
}  // namespace tda
