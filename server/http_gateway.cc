#include "server/http_gateway.h"

#include <google/protobuf/util/json_util.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <httplib.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tda/v1/attribution.grpc.pb.h"
#include "tda/v1/jobs.grpc.pb.h"

namespace tda {

namespace {

constexpr char kJson[] = "application/json";
constexpr char kSocketName[] = "/grpc.sock";

// One line of JSON; bytes that are not UTF-8 become U+FFFD.
std::string JsonLine(const nlohmann::json& json) {
  return json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

// google.rpc.Status as JSON, with the code's name beside its number.
nlohmann::json ErrorJson(grpc::StatusCode code, const std::string& message) {
  return {{"code", static_cast<int>(code)},
          {"status", absl::StatusCodeToString(static_cast<absl::StatusCode>(code))},
          {"message", message}};
}

void WriteError(grpc::StatusCode code, const std::string& message, httplib::Response* out) {
  out->status = HttpStatusForGrpcCode(code);
  out->set_content(JsonLine(ErrorJson(code, message)), kJson);
}

[[nodiscard]] bool ToJson(const google::protobuf::Message& message, std::string* json) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  return google::protobuf::util::MessageToJsonString(message, json, options).ok();
}

void WriteMessage(const google::protobuf::Message& message, httplib::Response* out) {
  std::string json;
  if (!ToJson(message, &json)) {
    return WriteError(grpc::StatusCode::INTERNAL,
                      "the reply could not be written as JSON (a string that is not UTF-8?)", out);
  }
  out->status = 200;
  out->set_content(json + "\n", kJson);
}

// Parses `json` ("" = {}) into `message`; on failure writes 400 naming the message type.
[[nodiscard]] bool ParseJson(const std::string& json, google::protobuf::Message* message,
                             httplib::Response* out) {
  const google::protobuf::util::Status parsed =
      google::protobuf::util::JsonStringToMessage(json.empty() ? "{}" : json, message);
  if (parsed.ok()) return true;
  WriteError(grpc::StatusCode::INVALID_ARGUMENT,
             absl::StrCat("the request is not a valid ", message->GetTypeName(),
                          " in JSON: ", parsed.message().as_string()),
             out);
  return false;
}

// The URL's query parameters as a JSON object of strings (the JSON mapping accepts numbers and enum
// names as strings), parsed into `message`.
[[nodiscard]] bool ParseQueryParameters(const httplib::Request& http,
                                        google::protobuf::Message* message,
                                        httplib::Response* out) {
  nlohmann::json fields = nlohmann::json::object();
  for (const auto& [name, value] : http.params) fields[name] = value;
  return ParseJson(JsonLine(fields), message, out);
}

// The path's first capture group as an id; on failure writes 400.
[[nodiscard]] bool PathId(const httplib::Request& http, int64_t* id, httplib::Response* out) {
  if (http.matches.size() > 1 && absl::SimpleAtoi(http.matches[1].str(), id)) return true;
  WriteError(grpc::StatusCode::INVALID_ARGUMENT,
             absl::StrCat("'", http.matches.size() > 1 ? http.matches[1].str() : "",
                          "' in the path is not an id (a number)"),
             out);
  return false;
}

// The client's deadline: "grpc-timeout: <1-8 digits><H|M|S|m|u|n>" (hours, minutes, seconds,
// milli-, micro-, nanoseconds; gRPC's wire format, as Google's transcoding takes it) or
// "X-Timeout-Seconds: <positive number>" becomes the forwarded call's deadline; false (400
// written) when malformed.
[[nodiscard]] bool SetCallDeadline(const httplib::Request& http, grpc::ClientContext* context,
                                   httplib::Response* out) {
  std::optional<absl::Duration> timeout;
  if (http.has_header("grpc-timeout")) {
    const std::string value = http.get_header_value("grpc-timeout");
    const std::string digits = value.substr(0, value.empty() ? 0 : value.size() - 1);
    const char unit = value.empty() ? '\0' : value.back();
    const std::map<char, absl::Duration> units = {
        {'H', absl::Hours(1)},        {'M', absl::Minutes(1)},      {'S', absl::Seconds(1)},
        {'m', absl::Milliseconds(1)}, {'u', absl::Microseconds(1)}, {'n', absl::Nanoseconds(1)}};
    int64_t count = 0;
    if (digits.empty() || digits.size() > 8 || !units.count(unit) ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        !absl::SimpleAtoi(digits, &count)) {
      WriteError(grpc::StatusCode::INVALID_ARGUMENT,
                 absl::StrCat("the grpc-timeout header '", value,
                              "' is not 1 to 8 digits and a unit H, M, S, m, u or n (e.g. 500m)"),
                 out);
      return false;
    }
    timeout = count * units.at(unit);
  } else if (http.has_header("X-Timeout-Seconds")) {
    const std::string value = http.get_header_value("X-Timeout-Seconds");
    double seconds = 0;
    if (!absl::SimpleAtod(value, &seconds) || !std::isfinite(seconds) || seconds <= 0) {
      WriteError(grpc::StatusCode::INVALID_ARGUMENT,
                 absl::StrCat("the X-Timeout-Seconds header '", value,
                              "' is not a number of seconds > 0 (e.g. 2.5)"),
                 out);
      return false;
    }
    timeout = absl::Seconds(seconds);
  }
  if (timeout.has_value()) context->set_deadline(absl::ToChronoTime(absl::Now() + *timeout));
  return true;
}

}  // namespace

int HttpStatusForGrpcCode(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return 200;
    case grpc::StatusCode::CANCELLED:
      return 499;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::OUT_OF_RANGE:
      return 400;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return 504;
    case grpc::StatusCode::NOT_FOUND:
      return 404;
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::ABORTED:
      return 409;
    case grpc::StatusCode::PERMISSION_DENIED:
      return 403;
    case grpc::StatusCode::UNAUTHENTICATED:
      return 401;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return 429;
    case grpc::StatusCode::UNIMPLEMENTED:
      return 501;
    case grpc::StatusCode::UNAVAILABLE:
      return 503;
    default:  // UNKNOWN, INTERNAL, DATA_LOSS
      return 500;
  }
}

absl::StatusOr<std::unique_ptr<JsonGateway>> JsonGateway::AddPrivatePort(
    std::shared_ptr<grpc::AuthMetadataProcessor> processor, int64_t max_message_bytes,
    grpc::ServerBuilder* builder) {
  const char* tmp = getenv("TMPDIR");
  std::string dir = absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp", "/tda-http-XXXXXX");
  if (mkdtemp(dir.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("cannot create a private directory ", dir,
                                            " for the HTTP gateway's socket (set TMPDIR)"));
  }
  auto gateway = std::unique_ptr<JsonGateway>(new JsonGateway());
  gateway->socket_dir_ = dir;
  gateway->grpc_target_ = absl::StrCat("unix:", dir, kSocketName);
  gateway->local_credentials_ = processor != nullptr;
  gateway->max_message_bytes_ = max_message_bytes;
  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
  if (processor != nullptr) {
    credentials = grpc::experimental::LocalServerCredentials(UDS);
    credentials->SetAuthMetadataProcessor(std::move(processor));
  }
  builder->AddListeningPort(gateway->grpc_target_, credentials);
  return gateway;
}

JsonGateway::~JsonGateway() {
  unlink((socket_dir_ + kSocketName).c_str());
  rmdir(socket_dir_.c_str());
}

void JsonGateway::AddRoutes(httplib::Server* routes) const {
  // A fresh channel per request: its own connection, so each caller's token is its own.
  auto new_channel = [target = grpc_target_, local = local_credentials_,
                      max_bytes = static_cast<int>(max_message_bytes_)] {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetMaxReceiveMessageSize(max_bytes);
    args.SetMaxSendMessageSize(max_bytes);
    return grpc::CreateCustomChannel(
        target,
        local ? grpc::experimental::LocalCredentials(UDS) : grpc::InsecureChannelCredentials(),
        args);
  };
  // Forwards the Authorization header; false (401 written) when it cannot be metadata.
  auto authorize = [](const httplib::Request& http, grpc::ClientContext* context,
                      httplib::Response* out) {
    if (!http.has_header("Authorization")) return true;
    const std::string value = http.get_header_value("Authorization");
    for (char c : value) {
      if (c < 0x20 || c > 0x7e) {
        WriteError(grpc::StatusCode::UNAUTHENTICATED,
                   "the Authorization header holds bytes that are not printable ASCII; "
                   "send 'Authorization: Bearer TOKEN'",
                   out);
        return false;
      }
    }
    context->AddMetadata("authorization", value);
    return true;
  };
  // One unary call: `fill` builds the request from the HTTP request (false: error written), `call`
  // makes it on a stub of the fresh channel.
  auto unary = [new_channel, authorize](auto request, auto response, auto fill, auto call) {
    return [=](const httplib::Request& http, httplib::Response& out) {
      auto req = request;
      if (!fill(http, &req, &out)) return;
      grpc::ClientContext context;
      if (!authorize(http, &context, &out) || !SetCallDeadline(http, &context, &out)) return;
      auto resp = response;
      const grpc::Status status = call(new_channel(), &context, req, &resp);
      if (!status.ok()) return WriteError(status.error_code(), status.error_message(), &out);
      WriteMessage(resp, &out);
    };
  };
  auto body = [](const httplib::Request& http, google::protobuf::Message* m,
                 httplib::Response* out) { return ParseJson(http.body, m, out); };
  auto query = [](const httplib::Request& http, google::protobuf::Message* m,
                  httplib::Response* out) { return ParseQueryParameters(http, m, out); };
  auto job_id = [](const httplib::Request& http, auto* m, httplib::Response* out) {
    int64_t id = 0;
    if (!PathId(http, &id, out)) return false;
    m->set_id(id);
    return true;
  };
  auto attribution = [](const std::shared_ptr<grpc::Channel>& channel) {
    return v1::AttributionService::NewStub(channel);
  };
  auto jobs = [](const std::shared_ptr<grpc::Channel>& channel) {
    return v1::JobService::NewStub(channel);
  };

  routes->Post("/v1/attribute",
               unary(v1::AttributeRequest(), v1::AttributeResponse(), body,
                     [=](auto channel, auto* context, const auto& request, auto* response) {
                       return attribution(channel)->Attribute(context, request, response);
                     }));
  routes->Get("/v1/indexes",
              unary(v1::ListIndexesRequest(), v1::ListIndexesResponse(), query,
                    [=](auto channel, auto* context, const auto& request, auto* response) {
                      return attribution(channel)->ListIndexes(context, request, response);
                    }));
  routes->Get(
      R"(/v1/indexes/([^/]+))",
      unary(
          v1::DescribeIndexRequest(), v1::DescribeIndexResponse(),
          [](const httplib::Request& http, v1::DescribeIndexRequest* m, httplib::Response*) {
            m->set_index(http.matches[1].str());
            return true;
          },
          [=](auto channel, auto* context, const auto& request, auto* response) {
            return attribution(channel)->DescribeIndex(context, request, response);
          }));
  routes->Get(R"(/v1/samples/(.+))",
              unary(
                  v1::GetSampleRequest(), v1::GetSampleResponse(),
                  [](const httplib::Request& http, v1::GetSampleRequest* m, httplib::Response*) {
                    m->set_sample_id(http.matches[1].str());
                    return true;
                  },
                  [=](auto channel, auto* context, const auto& request, auto* response) {
                    return attribution(channel)->GetSample(context, request, response);
                  }));
  auto self_influence = [=](auto channel, auto* context, const auto& request, auto* response) {
    return attribution(channel)->SelfInfluence(context, request, response);
  };
  routes->Post("/v1/self-influence", unary(v1::SelfInfluenceRequest(), v1::SelfInfluenceResponse(),
                                           body, self_influence));
  routes->Get("/v1/self-influence", unary(v1::SelfInfluenceRequest(), v1::SelfInfluenceResponse(),
                                          query, self_influence));
  routes->Post("/v1/jobs",
               unary(v1::SubmitJobRequest(), v1::Job(), body,
                     [=](auto channel, auto* context, const auto& request, auto* response) {
                       return jobs(channel)->SubmitJob(context, request, response);
                     }));
  routes->Get("/v1/jobs",
              unary(v1::ListJobsRequest(), v1::ListJobsResponse(), query,
                    [=](auto channel, auto* context, const auto& request, auto* response) {
                      return jobs(channel)->ListJobs(context, request, response);
                    }));
  routes->Get(R"(/v1/jobs/([^/:]+))",
              unary(v1::GetJobRequest(), v1::Job(), job_id,
                    [=](auto channel, auto* context, const auto& request, auto* response) {
                      return jobs(channel)->GetJob(context, request, response);
                    }));
  routes->Post(R"(/v1/jobs/([^/:]+):cancel)",
               unary(v1::CancelJobRequest(), v1::Job(), job_id,
                     [=](auto channel, auto* context, const auto& request, auto* response) {
                       return jobs(channel)->CancelJob(context, request, response);
                     }));
  routes->Post("/v1/schedules",
               unary(v1::CreateScheduleRequest(), v1::Schedule(), body,
                     [=](auto channel, auto* context, const auto& request, auto* response) {
                       return jobs(channel)->CreateSchedule(context, request, response);
                     }));
  routes->Get("/v1/schedules",
              unary(v1::ListSchedulesRequest(), v1::ListSchedulesResponse(), query,
                    [=](auto channel, auto* context, const auto& request, auto* response) {
                      return jobs(channel)->ListSchedules(context, request, response);
                    }));
  routes->Delete(R"(/v1/schedules/([^/:]+))",
                 unary(v1::DeleteScheduleRequest(), v1::DeleteScheduleResponse(), job_id,
                       [=](auto channel, auto* context, const auto& request, auto* response) {
                         return jobs(channel)->DeleteSchedule(context, request, response);
                       }));

  // WatchJob: the first update (or the error) decides the HTTP status; then one JSON line per
  // update, and an error after the first as a last line {"error": {...}}. A client that goes away
  // cancels the watch.
  routes->Get(R"(/v1/jobs/([^/:]+):watch)", [new_channel, authorize](const httplib::Request& http,
                                                                     httplib::Response& out) {
    int64_t id = 0;
    if (!PathId(http, &id, &out)) return;
    struct Watch {  // members destroyed in reverse order: the reader before its
                    // context
      std::shared_ptr<grpc::Channel> channel;
      std::unique_ptr<v1::JobService::Stub> stub;
      grpc::ClientContext context;
      std::unique_ptr<grpc::ClientReader<v1::JobUpdate>> reader;
      v1::JobUpdate first;
    };
    auto watch = std::make_shared<Watch>();
    if (!authorize(http, &watch->context, &out) || !SetCallDeadline(http, &watch->context, &out)) {
      return;
    }
    watch->channel = new_channel();
    watch->stub = v1::JobService::NewStub(watch->channel);
    v1::WatchJobRequest request;
    request.set_id(id);
    watch->reader = watch->stub->WatchJob(&watch->context, request);
    if (!watch->reader->Read(&watch->first)) {
      const grpc::Status status = watch->reader->Finish();
      return WriteError(
          status.ok() ? grpc::StatusCode::INTERNAL : status.error_code(),
          status.ok() ? "the watch ended before its first update" : status.error_message(), &out);
    }
    out.status = 200;
    out.set_chunked_content_provider(
        "application/x-ndjson", [watch](size_t, httplib::DataSink& sink) {
          v1::JobUpdate update = watch->first;
          do {
            std::string line;
            if (!ToJson(update, &line)) continue;
            line += "\n";
            if (!sink.write(line.data(), line.size())) {
              watch->context.TryCancel();
              watch->reader->Finish();
              return false;
            }
          } while (watch->reader->Read(&update));
          const grpc::Status status = watch->reader->Finish();
          if (!status.ok()) {
            const std::string line =
                JsonLine({{"error", ErrorJson(status.error_code(), status.error_message())}});
            sink.write(line.data(), line.size());
          }
          sink.done();
          return true;
        });
  });

  routes->set_error_handler([](const httplib::Request& http, httplib::Response& out) {
    if (!out.body.empty()) return;
    if (out.status == 404) {
      WriteError(grpc::StatusCode::NOT_FOUND,
                 absl::StrCat("no endpoint ", http.method, " ", http.path,
                              " (see README 'From curl' for the routes)"),
                 &out);
    } else if (out.status == 413) {
      WriteError(grpc::StatusCode::RESOURCE_EXHAUSTED,
                 "the request body is larger than the server's limit (--max-message-bytes)", &out);
      out.status = 413;  // not RESOURCE_EXHAUSTED's 429: nothing to retry
    }
  });
}

}  // namespace tda
