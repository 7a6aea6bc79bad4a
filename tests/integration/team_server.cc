#include "team_server.h"

#include <grpcpp/impl/client_unary_call.h>
#include <grpcpp/impl/rpc_method.h>
#include <grpcpp/support/byte_buffer.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "data/fashion_mnist.h"
#include "index/index_builder.h"
#include "test_support.h"

namespace tda::testing {

absl::StatusOr<std::string> BuildSmallIndex(const std::string& dir) {
  TinyModelSpec spec;
  spec.train_size = 300;
  spec.epochs = 1;
  TrainRecipe recipe;
  std::unique_ptr<Model> model = TrainTinyModel(spec, &recipe);
  if (model == nullptr) return absl::InternalError("training the tiny model failed");
  if (absl::Status s = model->Save(dir + "/model", recipe); !s.ok()) return s;
  IndexBuildOptions options;
  options.model_dir = dir + "/model";
  options.out_dir = dir + "/index";
  options.projection_dim_per_side = 4;
  if (absl::Status s = BuildIndex(FashionTrain(spec.train_size), kFashionMnistDefaultDir, options);
      !s.ok()) {
    return s;
  }
  return options.out_dir;
}

absl::StatusOr<std::unique_ptr<ChildProcess>> StartTdaServer(const std::string& index_dir,
                                                             const std::string& listen,
                                                             const std::vector<std::string>& extra,
                                                             std::string* address) {
  std::vector<std::string> argv = {TDA_SERVER_BINARY, "--index", index_dir, "--listen", listen,
                                   "--threads",       "1"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  absl::StatusOr<std::unique_ptr<ChildProcess>> child = ChildProcess::Start(argv);
  if (!child.ok()) return child.status();
  absl::StatusOr<std::string> line = (*child)->ReadLineContaining("tda-server listening on ", 60);
  if (!line.ok()) return line.status();
  *address = line->substr(line->rfind(' ') + 1);
  return child;
}

CommandResult Shell(const std::string& command, double timeout_seconds) {
  absl::StatusOr<CommandResult> result =
      RunCommand({"/bin/sh", "-c", command + " 2>&1"}, timeout_seconds);
  if (!result.ok()) return CommandResult{-1, std::string(result.status().message())};
  return *result;
}

absl::Status MakeCertificates(const std::string& dir) {
  const std::string script = absl::StrCat(
      "set -e; cd ", dir, "\n",
      "key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out $1; }\n"
      "key ca.key; key other-ca.key; key server.key; key client.key\n"
      "openssl req -x509 -new -key ca.key -out ca.pem -days 2 -subj /CN=tda-test-ca\n"
      "openssl req -x509 -new -key other-ca.key -out other-ca.pem -days 2 -subj /CN=other-ca\n"
      "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=serverAuth\\n' "
      "> server.ext\n"
      "printf 'extendedKeyUsage=clientAuth\\n' > client.ext\n"
      "openssl req -new -key server.key -out server.csr -subj /CN=localhost\n"
      "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
      "-extfile server.ext -out server.pem\n"
      "openssl req -new -key client.key -out client.csr -subj /CN=tda-client\n"
      "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
      "-extfile client.ext -out client.pem\n");
  const CommandResult result = Shell(script);
  if (result.exit_code != 0) return absl::InternalError("openssl failed: " + result.stdout_text);
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> TokenChannel(const std::string& address,
                                                            const std::string& token) {
  ConnectionOptions options;
  options.address = address;
  options.token = token;
  return ConnectChannel(options);
}

grpc::Status CallRaw(grpc::Channel* channel, const std::string& method_path,
                     const std::string& request_bytes, std::string* response_bytes) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  grpc::Slice slice(request_bytes);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  const grpc::internal::RpcMethod method(method_path.c_str(),
                                         grpc::internal::RpcMethod::NORMAL_RPC);
  grpc::Status status = grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(
      channel, method, &context, request, &response);
  if (status.ok() && response_bytes != nullptr) {
    std::vector<grpc::Slice> slices;
    response_bytes->clear();
    if (response.Dump(&slices).ok()) {
      for (const grpc::Slice& s : slices) {
        response_bytes->append(reinterpret_cast<const char*>(s.begin()), s.size());
      }
    }
  }
  return status;
}

std::string CreateToken(const std::string& file, const std::string& name, const std::string& role) {
  absl::StatusOr<CommandResult> result = RunCommand(
      {TDA_CLI_BINARY, "admin", "token", "create", name, "--role", role, "--file", file}, 30);
  EXPECT_TRUE(result.ok() && result->exit_code == 0) << name;
  std::string token = result.ok() ? result->stdout_text : "";
  while (!token.empty() && (token.back() == '\n' || token.back() == ' ')) token.pop_back();
  return token;
}

std::string HttpApiUrl(ChildProcess* server) {
  absl::StatusOr<std::string> line = server->ReadLineContaining("HTTP/JSON API on ", 30);
  EXPECT_TRUE(line.ok()) << line.status();
  return line.ok() ? line->substr(line->rfind(' ') + 1) : "";
}

void StopGracefully(ChildProcess* server) {
  server->Signal(SIGTERM);
  absl::StatusOr<int> exit = server->Wait(30);
  EXPECT_TRUE(exit.ok() && *exit == 0) << exit.status();
}

absl::StatusOr<std::string> BuildTinyGptIndex(const std::string& dir) {
  const std::string model = dir + "/model", index = dir + "/index";
  for (const std::string& command :
       {absl::StrCat(TDA_CLI_BINARY, " train --model-kind gpt --recipe tiny --threads 1 --out ",
                     model),
        absl::StrCat(TDA_CLI_BINARY, " index build --projection-dim 8 --threads 1 --model ", model,
                     " --out ", index)}) {
    const CommandResult result = Shell(command, 300);
    if (result.exit_code != 0) {
      return absl::InternalError(absl::StrCat(command, " failed:\n", result.stdout_text));
    }
  }
  return index;
}

}  // namespace tda::testing
