// The auth rules without a server: every method of every service tda-server registers is in
// the role table (a new RPC cannot ship without a role: it would be denied), public methods
// are exactly health and reflection, token files parse or fail naming file and line, token
// files hold hashes only, the listen policy keeps unprotected servers on loopback, and path
// hiding shows readers names only.
#include <google/protobuf/descriptor.h>
#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "auth/token_file.h"
#include "common/atomic_file.h"
#include "server/path_hiding.h"
#include "server/rpc_roles.h"
#include "server/server_security.h"
#include "tda/v1/admin.grpc.pb.h"
#include "tda/v1/attribution.grpc.pb.h"
#include "tda/v1/jobs.grpc.pb.h"
#include "tda/v1/shard.grpc.pb.h"
#include "test_support.h"

namespace tda {
namespace {

using ::tda::testing::StatusIs;
using ::testing::HasSubstr;

// The services tda-server registers (server/tda_server.cc), besides health and reflection.
const char* const kRegisteredServices[] = {
    v1::AttributionService::service_full_name(),
    v1::JobService::service_full_name(),
    v1::AdminService::service_full_name(),
    v1::ShardService::service_full_name(),
};

// Makes sure the generated descriptors of the tda.v1 files are linked into this test.
void LinkProtoFiles() {
  v1::DescribeIndexRequest::descriptor();
  v1::GetJobRequest::descriptor();
  v1::ReloadTokensRequest::descriptor();
  v1::ScoreShardRequest::descriptor();
}

TEST(RpcRolesTest, EveryMethodOfEveryRegisteredServiceHasARole) {
  LinkProtoFiles();
  std::set<std::string> in_services;
  for (const char* name : kRegisteredServices) {
    const google::protobuf::ServiceDescriptor* service =
        google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(name);
    ASSERT_NE(service, nullptr) << name;
    for (int i = 0; i < service->method_count(); ++i) {
      const std::string path = "/" + service->full_name() + "/" + service->method(i)->name();
      in_services.insert(path);
      EXPECT_TRUE(RequiredRole(path).has_value()) << path << " is not in server/rpc_roles.cc";
      EXPECT_FALSE(IsPublicMethod(path)) << path;
    }
  }
  // And the table names no method that does not exist.
  for (const std::string& path : MethodsInRoleTable()) {
    EXPECT_EQ(in_services.count(path), 1u) << path << " is in the table but no service has it";
  }
}

TEST(RpcRolesTest, EveryServiceInTheProtoFilesIsRegistered) {
  // A service added to a tda.v1 proto file must be added to kRegisteredServices above.
  LinkProtoFiles();
  std::set<std::string> registered(std::begin(kRegisteredServices), std::end(kRegisteredServices));
  for (const char* file : {"tda/v1/attribution.proto", "tda/v1/jobs.proto", "tda/v1/admin.proto",
                           "tda/v1/shard.proto"}) {
    const google::protobuf::FileDescriptor* descriptor =
        google::protobuf::DescriptorPool::generated_pool()->FindFileByName(file);
    ASSERT_NE(descriptor, nullptr) << file;
    for (int i = 0; i < descriptor->service_count(); ++i) {
      EXPECT_EQ(registered.count(descriptor->service(i)->full_name()), 1u)
          << descriptor->service(i)->full_name();
    }
  }
}

TEST(RpcRolesTest, UnknownMethodsHaveNoRoleAndOnlyHealthAndReflectionArePublic) {
  EXPECT_FALSE(RequiredRole("/tda.v1.JobService/DropDatabase").has_value());
  EXPECT_FALSE(RequiredRole("").has_value());
  EXPECT_EQ(RequiredRole("/tda.v1.JobService/SubmitJob"), Role::kOperator);
  EXPECT_EQ(RequiredRole("/tda.v1.AttributionService/Attribute"), Role::kReader);
  EXPECT_EQ(RequiredRole("/tda.v1.AdminService/ReloadTokens"), Role::kAdmin);
  EXPECT_TRUE(IsPublicMethod("/grpc.health.v1.Health/Check"));
  EXPECT_TRUE(IsPublicMethod("/grpc.health.v1.Health/Watch"));
  EXPECT_TRUE(IsPublicMethod("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"));
  EXPECT_FALSE(IsPublicMethod("/grpc.health.v1.Health/"));
  EXPECT_FALSE(IsPublicMethod("/grpc.health.v1.Health/x/y"));
  EXPECT_FALSE(IsPublicMethod("/grpc.health.v1.HealthX/Check"));
  EXPECT_FALSE(IsPublicMethod("/tda.v1.AttributionService/DescribeIndex"));
}

TEST(TokenFileTest, ParsesCommentsBlankLinesAndEntries) {
  const std::string hash = Sha256Hex("secret");
  absl::StatusOr<std::vector<TokenEntry>> entries =
      ParseTokenFile("tokens", "# team tokens\n\nalice reader " + hash + "\n  bob\toperator   " +
                                   Sha256Hex("other") + "  \n");
  TDA_ASSERT_OK(entries);
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[0].name, "alice");
  EXPECT_EQ((*entries)[1].role, Role::kOperator);
  TokenSet set(*entries);
  ASSERT_TRUE(set.Authenticate("secret").has_value());
  EXPECT_EQ(set.Authenticate("secret")->name, "alice");
  EXPECT_FALSE(set.Authenticate("Secret").has_value());
  EXPECT_FALSE(set.Authenticate("").has_value());
}

TEST(TokenFileTest, Sha256MatchesTheStandardTestVector) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(TokenFileTest, MalformedLinesAreRefusedNamingFileAndLine) {
  const std::string hash = Sha256Hex("x");
  EXPECT_THAT(ParseTokenFile("t.txt", "# ok\nalice reader\n").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("t.txt:2:")));
  EXPECT_THAT(ParseTokenFile("t.txt", "alice root " + hash).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unknown role 'root'")));
  EXPECT_THAT(ParseTokenFile("t.txt", "alice reader tda_plaintexttoken").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("SHA-256")));
  EXPECT_THAT(ParseTokenFile("t.txt", "a/b reader " + hash).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("t.txt:1:")));
  EXPECT_THAT(ParseTokenFile("t.txt", "a reader " + hash + "\na admin " + hash).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("t.txt:2: duplicate")));
}

TEST(TokenFileTest, CreateStoresOnlyTheHashRefusesDuplicatesAndRevokeRemoves) {
  testing::TempDir dir;
  const std::string path = dir.file("tokens");
  absl::StatusOr<std::string> alice = CreateToken(path, "alice", Role::kReader);
  TDA_ASSERT_OK(alice);
  absl::StatusOr<std::string> bob = CreateToken(path, "bob", Role::kAdmin);
  TDA_ASSERT_OK(bob);
  EXPECT_NE(*alice, *bob);
  EXPECT_EQ(alice->size(), 4u + 64u);
  std::string text;
  TDA_ASSERT_OK(ReadFile(path, &text));
  EXPECT_EQ(text.find(*alice), std::string::npos);
  EXPECT_NE(text.find(Sha256Hex(*alice)), std::string::npos);
  EXPECT_THAT(CreateToken(path, "alice", Role::kAdmin).status(),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("alice")));
  TDA_ASSERT_OK(RevokeToken(path, "alice"));
  absl::StatusOr<std::vector<TokenEntry>> left = ReadTokenFile(path);
  TDA_ASSERT_OK(left);
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ((*left)[0].name, "bob");
  EXPECT_THAT(RevokeToken(path, "alice"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("alice")));
}

TEST(ListenPolicyTest, LoopbackIsAlwaysAllowed) {
  for (const char* listen : {"127.0.0.1:0", "127.1.2.3:5", "localhost:50051", "[::1]:50051"}) {
    absl::StatusOr<std::vector<std::string>> warnings = CheckListenPolicy(listen, {});
    TDA_ASSERT_OK(warnings);
    EXPECT_TRUE(warnings->empty()) << listen;
  }
}

TEST(ListenPolicyTest, NetworkAddressesNeedTlsAndTokensOrInsecure) {
  ServerSecurityOptions none;
  for (const char* listen :
       {"0.0.0.0:0", "[::]:50051", "192.168.1.20:50051", ":50051", "example.com:1"}) {
    EXPECT_THAT(CheckListenPolicy(listen, none).status(),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--insecure")))
        << listen;
  }
  ServerSecurityOptions tokens_only;
  tokens_only.auth_tokens_file = "tokens";
  tokens_only.insecure = true;
  EXPECT_THAT(CheckListenPolicy("0.0.0.0:0", tokens_only).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("clear text")));
  ServerSecurityOptions insecure;
  insecure.insecure = true;
  absl::StatusOr<std::vector<std::string>> warnings = CheckListenPolicy("0.0.0.0:0", insecure);
  TDA_ASSERT_OK(warnings);
  ASSERT_EQ(warnings->size(), 1u);
  EXPECT_THAT((*warnings)[0], HasSubstr("INSECURE"));
  ServerSecurityOptions full;
  full.auth_tokens_file = "tokens";
  full.tls_cert_file = "cert.pem";
  full.tls_key_file = "key.pem";
  EXPECT_TRUE(CheckListenPolicy("0.0.0.0:0", full).ok());
  full.tls_key_file = "";
  EXPECT_THAT(CheckListenPolicy("127.0.0.1:0", full).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--tls-key")));
}

TEST(PathHidingTest, ReadersSeeNamesOperatorsSeePaths) {
  EXPECT_EQ(VisiblePath(Role::kReader, "/srv/tda/indexes/fmnist"), "fmnist");
  EXPECT_EQ(VisiblePath(Role::kReader, "/srv/tda/indexes/fmnist/"), "fmnist");
  EXPECT_EQ(VisiblePath(Role::kOperator, "/srv/tda/indexes/fmnist"), "/srv/tda/indexes/fmnist");
  v1::Job job;
  job.set_result_path("/srv/out/scores.jsonl");
  job.set_spec_json(
      R"({"index":"/srv/idx/a","top_k":5,"queries":["/q/x.jsonl"],"method":"ekfac"})");
  v1::Job reader_view = job;
  HidePaths(Role::kReader, &reader_view);
  EXPECT_EQ(reader_view.result_path(), "scores.jsonl");
  EXPECT_EQ(reader_view.spec_json().find("/srv"), std::string::npos) << reader_view.spec_json();
  EXPECT_NE(reader_view.spec_json().find("\"a\""), std::string::npos);
  EXPECT_NE(reader_view.spec_json().find("x.jsonl"), std::string::npos);
  EXPECT_NE(reader_view.spec_json().find("ekfac"), std::string::npos);
  v1::Job admin_view = job;
  HidePaths(Role::kAdmin, &admin_view);
  EXPECT_EQ(admin_view.DebugString(), job.DebugString());
  v1::DescribeIndexResponse describe;
  describe.set_data_dir("/usr/share/fashion-mnist");
  HidePaths(Role::kReader, &describe);
  EXPECT_EQ(describe.data_dir(), "fashion-mnist");
}

}  // namespace
}  // namespace tda
