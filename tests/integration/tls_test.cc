// TLS and mutual TLS through the real tda-server and tda CLI, with certificates made in the
// test by Debian's openssl command: a CA, a server certificate for 127.0.0.1 and localhost
// (subjectAltName), a client certificate, and an unrelated CA. With the CA the CLI and a C++
// client (RemoteAttributor) connect; with another CA or in plaintext they fail with a clear
// message; with --tls-client-ca a client without a certificate is refused and one with it
// accepted. The TLS server also requires tokens and listens on 0.0.0.0, which the listen
// policy allows with both.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "client/remote_attributor.h"
#include "common/atomic_file.h"
#include "team_server.h"
#include "test_support.h"

namespace tda {
namespace {

using ::tda::testing::ChildProcess;
using ::tda::testing::CommandResult;
using ::testing::HasSubstr;

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    TDA_ASSERT_OK(testing::MakeCertificates(dir_->path()));
    absl::StatusOr<std::string> index = testing::BuildSmallIndex(dir_->path());
    TDA_ASSERT_OK(index);
    index_dir_ = *index;
    const CommandResult created = testing::Shell(
        absl::StrCat(TDA_CLI_BINARY, " admin token create alice --role reader --file ",
                     dir_->file("tokens"), " 2>/dev/null > ", dir_->file("alice.token")));
    ASSERT_EQ(created.exit_code, 0) << created.stdout_text;
    std::string token;
    TDA_ASSERT_OK(ReadFile(dir_->file("alice.token"), &token));
    token_ = token.substr(0, token.find('\n'));
  }
  static void TearDownTestSuite() { delete dir_; }

  // A TLS server with tokens on 0.0.0.0; with `client_ca`, mutual TLS. Sets port_.
  std::unique_ptr<ChildProcess> StartTlsServer(bool client_ca) {
    std::vector<std::string> flags = {"--tls-cert",    dir_->file("server.pem"),
                                      "--tls-key",     dir_->file("server.key"),
                                      "--auth-tokens", dir_->file("tokens")};
    if (client_ca) flags.insert(flags.end(), {"--tls-client-ca", dir_->file("ca.pem")});
    std::string address;
    absl::StatusOr<std::unique_ptr<ChildProcess>> server =
        testing::StartTdaServer(index_dir_, "0.0.0.0:0", flags, &address);
    EXPECT_TRUE(server.ok()) << server.status();
    if (!server.ok()) return nullptr;
    address_ = "127.0.0.1:" + address.substr(address.rfind(':') + 1);
    return std::move(*server);
  }

  CommandResult Describe(const std::string& tls_flags) {
    return testing::Shell(absl::StrCat(TDA_CLI_BINARY, " describe --server ", address_, " ",
                                       tls_flags, " --token-file ", dir_->file("alice.token")));
  }

  ConnectionOptions Connection(const std::string& ca, bool client_cert) const {
    ConnectionOptions options;
    options.address = address_;
    options.token = token_;
    options.tls_ca_file = ca.empty() ? "" : dir_->file(ca);
    if (client_cert) {
      options.tls_cert_file = dir_->file("client.pem");
      options.tls_key_file = dir_->file("client.key");
    }
    return options;
  }

  static inline testing::TempDir* dir_ = nullptr;
  static inline std::string index_dir_, token_;
  std::string address_;
};

TEST_F(TlsTest, ClientsWithTheCaConnectOthersDoNot) {
  std::unique_ptr<ChildProcess> server = StartTlsServer(/*client_ca=*/false);
  ASSERT_NE(server, nullptr);
  const CommandResult with_ca = Describe("--tls-ca " + dir_->file("ca.pem"));
  EXPECT_EQ(with_ca.exit_code, 0) << with_ca.stdout_text;
  EXPECT_THAT(with_ca.stdout_text, HasSubstr("rows"));

  absl::StatusOr<std::unique_ptr<RemoteAttributor>> remote =
      RemoteAttributor::Connect(Connection("ca.pem", false), RemoteAttributor::Options{});
  TDA_ASSERT_OK(remote);
  absl::StatusOr<v1::DescribeIndexResponse> description = (*remote)->Describe();
  TDA_ASSERT_OK(description);
  EXPECT_GT(description->rows(), 0);

  // Another CA, or plaintext: the handshake fails, at once and saying so.
  const CommandResult other_ca = Describe("--tls-ca " + dir_->file("other-ca.pem"));
  EXPECT_EQ(other_ca.exit_code, 1);
  EXPECT_THAT(other_ca.stdout_text, HasSubstr("handshake failed"));
  const CommandResult plaintext = Describe("");
  EXPECT_EQ(plaintext.exit_code, 1);
  EXPECT_THAT(plaintext.stdout_text, HasSubstr("--tls-ca"));
  EXPECT_FALSE(
      RemoteAttributor::Connect(Connection("other-ca.pem", false), RemoteAttributor::Options{})
          .ok());
  EXPECT_FALSE(RemoteAttributor::Connect(Connection("", false), RemoteAttributor::Options{}).ok());
}

TEST_F(TlsTest, MutualTlsRefusesClientsWithoutACertificate) {
  std::unique_ptr<ChildProcess> server = StartTlsServer(/*client_ca=*/true);
  ASSERT_NE(server, nullptr);
  const std::string ca = "--tls-ca " + dir_->file("ca.pem");
  const CommandResult without_cert = Describe(ca);
  EXPECT_NE(without_cert.exit_code, 0) << without_cert.stdout_text;
  absl::StatusOr<std::unique_ptr<RemoteAttributor>> refused =
      RemoteAttributor::Connect(Connection("ca.pem", false), RemoteAttributor::Options{});
  bool refused_ok = !refused.ok() || !(*refused)->Describe().ok();
  EXPECT_TRUE(refused_ok) << "a client without a certificate got through";

  const CommandResult with_cert = Describe(ca + " --tls-cert " + dir_->file("client.pem") +
                                           " --tls-key " + dir_->file("client.key"));
  EXPECT_EQ(with_cert.exit_code, 0) << with_cert.stdout_text;
  absl::StatusOr<std::unique_ptr<RemoteAttributor>> accepted =
      RemoteAttributor::Connect(Connection("ca.pem", true), RemoteAttributor::Options{});
  TDA_ASSERT_OK(accepted);
  TDA_ASSERT_OK((*accepted)->Describe());
}

// `tda health` is the probe of a TLS server (deploy/k8s: Kubernetes' gRPC probe is plaintext
// only): it needs the CA but no token, and its exit code is the answer.
TEST_F(TlsTest, HealthCommandProbesTheServerWithoutAToken) {
  std::unique_ptr<ChildProcess> server = StartTlsServer(/*client_ca=*/false);
  ASSERT_NE(server, nullptr);
  const std::string probe = absl::StrCat(TDA_CLI_BINARY, " health --server ", address_,
                                         " --tls-ca ", dir_->file("ca.pem"));
  const CommandResult whole = testing::Shell(probe);
  EXPECT_EQ(whole.exit_code, 0) << whole.stdout_text;
  EXPECT_THAT(whole.stdout_text, HasSubstr("SERVING"));
  const CommandResult service = testing::Shell(probe + " --service tda.v1.AttributionService");
  EXPECT_EQ(service.exit_code, 0) << service.stdout_text;

  const CommandResult unknown = testing::Shell(probe + " --service tda.v1.NoSuchService");
  EXPECT_EQ(unknown.exit_code, 1) << unknown.stdout_text;
  const CommandResult plaintext =
      testing::Shell(absl::StrCat(TDA_CLI_BINARY, " health --server ", address_));
  EXPECT_EQ(plaintext.exit_code, 1) << plaintext.stdout_text;
  const CommandResult bad_timeout = testing::Shell(probe + " --timeout 0");
  EXPECT_EQ(bad_timeout.exit_code, 2) << bad_timeout.stdout_text;
}

}  // namespace
}  // namespace tda
