// Helpers for the team-server tests (auth_test, tls_test, http_python_client_test): a small real index, tda-server
// started with extra flags, shell commands with their stderr, and raw calls of any method with
// a given token over a real loopback channel. Not thread-safe.
#pragma once

#include <grpcpp/channel.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "child_process.h"
#include "client/channel.h"

namespace tda::testing {

// Trains a tiny model on 300 Fashion-MNIST images and writes its index to DIR/index; returns
// the index directory.
absl::StatusOr<std::string> BuildSmallIndex(const std::string& dir);

// Starts tda-server --index INDEX --listen LISTEN --threads 1 plus `extra` and reads the bound
// address from its "listening" line.
absl::StatusOr<std::unique_ptr<ChildProcess>> StartTdaServer(const std::string& index_dir,
                                                             const std::string& listen,
                                                             const std::vector<std::string>& extra,
                                                             std::string* address);

// Runs `command` with /bin/sh, stdout and stderr together.
CommandResult Shell(const std::string& command, double timeout_seconds = 60);

// Writes, with Debian's openssl command, ca.pem, server.{pem,key} (for 127.0.0.1 and
// localhost, signed by ca.pem), client.{pem,key} (signed by ca.pem) and other-ca.pem into `dir`.
absl::Status MakeCertificates(const std::string& dir);

// A channel as the CLI builds it (client/channel.h) with `token` ("" = none).
absl::StatusOr<std::shared_ptr<grpc::Channel>> TokenChannel(const std::string& address,
                                                            const std::string& token);

// Calls `method_path` ("/tda.v1.JobService/GetJob") with a serialized request (unary-style:
// one request, at most one response read), returning the call's status.
grpc::Status CallRaw(grpc::Channel* channel, const std::string& method_path,
                     const std::string& request_bytes = "", std::string* response_bytes = nullptr);

// `tda admin token create NAME --role ROLE --file FILE`: the new token ("" and a test failure
// when the command fails).
std::string CreateToken(const std::string& file, const std::string& name, const std::string& role);

// The URL of a server's HTTP API from its "HTTP/JSON API on URL" line (a test failure and ""
// when it does not come within 30 s).
std::string HttpApiUrl(ChildProcess* server);

// Stops a server with --http-listen as an operator would (SIGTERM), so that it removes its private
// socket directory (a SIGKILL, the ChildProcess destructor's way, leaves it behind); a test
// failure unless it exits 0 within 30 s.
void StopGracefully(ChildProcess* server);

// A byte-level GPT trained on fortunes by `tda train --recipe tiny` and its index built by `tda
// index build --projection-dim 8` (one thread each; 400 rows): returns DIR/index.
absl::StatusOr<std::string> BuildTinyGptIndex(const std::string& dir);

}  // namespace tda::testing
