// The Python client (python/tda) and the JSON-over-HTTP API against the real tda-server on
// loopback. This harness builds the indexes and starts the servers; the checks are Python
// (tests/python/*_test.py, run with Debian's /usr/bin/python3 and the stubs CMake generated into
// build/python), reading a JSON file that says where everything is:
//   - Fashion-MNIST: a small real index served with tokens (reader, operator), a job database
//     and --http-listen (refused off loopback, refused on a port in use). The Python client's id
//     query equals `tda query --json`, a sleep job submitted and watched from Python completes,
//     a bad request raises INVALID_ARGUMENT with the server's message; self-influence equals
//     `tda index self-influence --json`; schedules are created, listed and deleted; every HTTP
//     endpoint answers what gRPC answers, bad JSON is 400, no token 401, a reader submitting a
//     job 403, a deadline header that passes 504; the explorer's files are served without a
//     token; python/examples/quickstart.py prints the server's answers.
//   - TLS with client certificates (mTLS) and tokens on 0.0.0.0: HTTPS and the Python client
//     answer alike with a client certificate; without one, or trusting another CA, they fail.
//   - fortunes: a tiny GPT trained and indexed by the CLI; a text query from Python equals
//     `tda query --json`.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "team_server.h"
#include "test_support.h"

namespace tda {
namespace {

using ::tda::testing::ChildProcess;

// Small enough for a test to send a larger body, large enough for every message of the tests.
constexpr int kMaxMessageBytes = 1 << 20;

// Runs tests/python/SCRIPT with the config file, printing its unittest output.
void RunPythonTest(const std::string& script, const std::string& config) {
  const std::string command =
      absl::StrCat("PYTHONPATH=", TDA_PYTHON_PACKAGE_DIR, ":", TDA_PYTHON_STUBS_DIR, " ",
                   TDA_PYTHON, " ", TDA_PYTHON_TESTS_DIR, "/", script, " ", config);
  const testing::CommandResult result = testing::Shell(command, 240);
  std::cout << result.stdout_text;
  EXPECT_EQ(result.exit_code, 0) << command;
}

TEST(HttpPythonClient, FashionMnistThroughPythonAndHttp) {
  testing::TempDir dir;
  absl::StatusOr<std::string> index = testing::BuildSmallIndex(dir.path());
  TDA_ASSERT_OK(index);
  const std::string tokens_file = dir.file("tokens");
  nlohmann::json tokens = {{"reader", testing::CreateToken(tokens_file, "reader", "reader")},
                           {"operator", testing::CreateToken(tokens_file, "operator", "operator")},
                           {"admin", testing::CreateToken(tokens_file, "admin", "admin")}};
  std::string address;
  absl::StatusOr<std::unique_ptr<ChildProcess>> server = testing::StartTdaServer(
      *index, "127.0.0.1:0",
      {"--auth-tokens", tokens_file, "--state-dir", dir.file("state"), "--http-listen",
       "127.0.0.1:0", "--max-message-bytes", std::to_string(kMaxMessageBytes)},
      &address);
  TDA_ASSERT_OK(server);
  const nlohmann::json config = {{"cli", TDA_CLI_BINARY},
                                 {"index", *index},
                                 {"address", address},
                                 {"http", testing::HttpApiUrl(server->get())},
                                 {"tokens", tokens},
                                 {"tokens_file", tokens_file},
                                 {"max_message_bytes", kMaxMessageBytes}};
  // The tokens go in a file, never on a command line.
  TDA_ASSERT_OK(WriteFileAtomically(dir.file("config.json"), config.dump(2)));
  // The HTTP port follows the gRPC port's rules: off loopback only with TLS and tokens (or
  // --insecure), and a port in use is refused, not shared.
  const std::string serve =
      absl::StrCat(TDA_SERVER_BINARY, " --index ", *index, " --listen 127.0.0.1:0 --http-listen ");
  const std::string http_address = config["http"].get<std::string>().substr(strlen("http://"));
  for (const auto& [listen, refusal] :
       {std::pair<std::string, std::string>{"0.0.0.0:0", "refusing to listen on the non-loopback"},
        {http_address, "cannot listen for HTTP on"}}) {
    const testing::CommandResult refused = testing::Shell(serve + listen, 60);
    EXPECT_EQ(refused.exit_code, 1) << listen;
    EXPECT_THAT(refused.stdout_text, ::testing::HasSubstr(refusal));
  }
  RunPythonTest("client_fashion_mnist_test.py", dir.file("config.json"));
  RunPythonTest("http_api_test.py", dir.file("config.json"));
  RunPythonTest("quickstart_test.py", dir.file("config.json"));
  testing::StopGracefully(server->get());
}

TEST(HttpPythonClient, HttpsAndGrpcWithClientCertificates) {
  testing::TempDir dir;
  TDA_ASSERT_OK(testing::MakeCertificates(dir.path()));
  absl::StatusOr<std::string> index = testing::BuildSmallIndex(dir.path());
  TDA_ASSERT_OK(index);
  const std::string tokens_file = dir.file("tokens");
  const nlohmann::json tokens = {{"reader", testing::CreateToken(tokens_file, "reader", "reader")}};
  std::string address;
  // TLS and tokens: the listen policy allows a network address, for HTTP too.
  absl::StatusOr<std::unique_ptr<ChildProcess>> server = testing::StartTdaServer(
      *index, "0.0.0.0:0",
      {"--auth-tokens", tokens_file, "--tls-cert", dir.file("server.pem"), "--tls-key",
       dir.file("server.key"), "--tls-client-ca", dir.file("ca.pem"), "--http-listen", "0.0.0.0:0"},
      &address);
  TDA_ASSERT_OK(server);
  const std::string url = testing::HttpApiUrl(server->get());
  ASSERT_EQ(url.rfind("https://0.0.0.0:", 0), 0u) << url;
  const nlohmann::json config = {{"address", "127.0.0.1" + address.substr(address.rfind(':'))},
                                 {"http", "https://127.0.0.1" + url.substr(url.rfind(':'))},
                                 {"tokens", tokens},
                                 {"certificates", dir.path()}};
  TDA_ASSERT_OK(WriteFileAtomically(dir.file("config.json"), config.dump(2)));
  RunPythonTest("https_test.py", dir.file("config.json"));
  testing::StopGracefully(server->get());
}

TEST(HttpPythonClient, FortunesTextQueryFromPython) {
  testing::TempDir dir;
  absl::StatusOr<std::string> index = testing::BuildTinyGptIndex(dir.path());
  TDA_ASSERT_OK(index);
  std::string address;
  absl::StatusOr<std::unique_ptr<ChildProcess>> server =
      testing::StartTdaServer(*index, "127.0.0.1:0", {}, &address);
  TDA_ASSERT_OK(server);
  const nlohmann::json config = {{"cli", TDA_CLI_BINARY}, {"index", *index}, {"address", address}};
  TDA_ASSERT_OK(WriteFileAtomically(dir.file("config.json"), config.dump(2)));
  RunPythonTest("client_fortunes_test.py", dir.file("config.json"));
  RunPythonTest("quickstart_test.py", dir.file("config.json"));
}

}  // namespace
}  // namespace tda
