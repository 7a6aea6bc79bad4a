#include "server/call_log.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <grpcpp/server_context.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "server/attribution_service.h"
#include "server/caller.h"
#include "server/server_metrics.h"

namespace tda {
namespace {

using grpc::experimental::InterceptionHookPoints;

std::atomic<int64_t> next_request_id{1};

class CallLogInterceptor final : public grpc::experimental::Interceptor {
 public:
  CallLogInterceptor(grpc::experimental::ServerRpcInfo* info, ServerMetrics* metrics)
      : info_(info),
        metrics_(metrics),
        start_(std::chrono::steady_clock::now()),
        id_(next_request_id++) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE)) {
      ReadRequest(static_cast<const google::protobuf::Message*>(methods->GetRecvMessage()));
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      ReadBatchQueries(methods->GetSendTrailingMetadata());
      Write(methods->GetSendStatus());
    }
    methods->Proceed();
  }

 private:
  // The request's `index` (string) and `queries` (repeated) fields, when it has them.
  void ReadRequest(const google::protobuf::Message* request) {
    if (request == nullptr) return;
    const google::protobuf::Descriptor* type = request->GetDescriptor();
    const google::protobuf::Reflection* reflection = request->GetReflection();
    const google::protobuf::FieldDescriptor* index = type->FindFieldByName("index");
    if (index != nullptr && index->type() == google::protobuf::FieldDescriptor::TYPE_STRING &&
        !index->is_repeated()) {
      index_ = reflection->GetString(*request, index);
    }
    const google::protobuf::FieldDescriptor* queries = type->FindFieldByName("queries");
    if (queries != nullptr && queries->is_repeated()) {
      queries_ = reflection->FieldSize(*request, queries);
    }
  }

  // Attribute's trailing kBatchQueriesMetadata (server/attribution_service.h), when set.
  void ReadBatchQueries(const std::multimap<std::string, std::string>* trailing) {
    if (trailing == nullptr) return;
    const auto it = trailing->find(kBatchQueriesMetadata);
    if (it != trailing->end()) absl::SimpleAtoi(it->second, &batch_queries_);
  }

  void Write(const grpc::Status& status) const {
    grpc::ServerContextBase* context = info_->server_context();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const std::string code =
        absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code()));
    if (metrics_ != nullptr) metrics_->RecordCall(info_->method(), index_, code, seconds);
    nlohmann::ordered_json line = {  // in this order: "call_log" first
        {"call_log", 1},
        {"request_id", id_},
        {"peer", context != nullptr ? context->peer() : ""},
        {"caller", context != nullptr ? CallerName(*context) : ""},
        {"rpc", info_->method()},
        {"latency_ms", seconds * 1000},
        {"status", code}};
    if (!index_.empty()) line["index"] = index_;
    if (queries_ >= 0) line["queries"] = queries_;
    if (batch_queries_ > 0) line["batch_queries"] = batch_queries_;
    const std::string text =
        line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    [[maybe_unused]] const ssize_t written = ::write(STDERR_FILENO, text.data(), text.size());
  }

  grpc::experimental::ServerRpcInfo* info_;
  ServerMetrics* const metrics_;
  const std::chrono::steady_clock::time_point start_;
  const int64_t id_;
  std::string index_;
  int64_t queries_ = -1;
  int64_t batch_queries_ = 0;
};

}  // namespace

grpc::experimental::Interceptor* CallLogInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  if (!absl::StartsWith(info->method(), "/tda.v1.")) return nullptr;
  return new CallLogInterceptor(info, metrics_);
}

}  // namespace tda
