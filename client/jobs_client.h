// What the `tda jobs` subcommands share (jobs_command.cc, schedule_command.cc): the JobService
// client of the connection flags, the flags generated from a job kind's spec fields, and the
// small parsers and formatters of ids and times.
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "api/status_conversion.h"
#include "client/channel.h"
#include "client/commands.h"
#include "common/flags.h"
#include "jobs/job_kinds.h"
#include "tda/v1/jobs.grpc.pb.h"

namespace tda {

class JobsClient {
 public:
  // The server of the connection flags (client/channel.h); kInvalidArgument for flags that
  // are not usable (a usage error).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<JobsClient>> Connect(const FlagParser& flags) {
    absl::StatusOr<ConnectionOptions> connection = ConnectionFromFlags(flags);
    if (!connection.ok()) return connection.status();
    connection->connect_timeout_seconds = 10;
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = ConnectChannel(*connection);
    if (!channel.ok()) return channel.status();
    auto client = std::make_unique<JobsClient>();
    client->channel_ = std::move(*channel);
    client->stub_ = v1::JobService::NewStub(client->channel_);
    client->address_ = connection->address;
    return client;
  }

  template <typename Request, typename Response, typename Method>
  [[nodiscard]] absl::Status Call(const char* name, Method method, const Request& request, Response* response) {
    grpc::ClientContext context;
    return FromGrpcStatus((stub_.get()->*method)(&context, request, response),
                          absl::StrCat(name, " at ", address_));
  }

  v1::JobService::Stub& stub() { return *stub_; }
  const std::string& address() const { return address_; }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::JobService::Stub> stub_;
  std::string address_;
};

// Pulls the first positional argument (an id or kind) out of `args`.
bool TakePositional(Args& args, std::string* value);
// A usage error (exit 2) for unusable connection flags, else a runtime error (exit 1).
int ConnectError(const FlagParser& flags, const absl::Status& status);
// --server and the other connection flags, and --json.
void AddServerFlags(FlagParser& flags);
// Adds one flag per spec field of `kind`.
void AddSpecFlags(FlagParser& flags, const JobKind& kind);
// The spec from the flags that were given (the server fills in defaults), validated.
[[nodiscard]] absl::StatusOr<std::string> SpecFromFlags(const FlagParser& flags, const JobKind& kind);
// A job or schedule id (> 0); kInvalidArgument otherwise.
[[nodiscard]] absl::StatusOr<int64_t> ParseId(const std::string& text);
// "YYYY-MM-DD HH:MM:SS" (UTC), "-" for 0.
std::string FormatTime(double seconds);

// tda jobs schedule create | list | delete.
int RunJobsSchedule(Args args);

}  // namespace tda
