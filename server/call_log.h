// The call log: one structured line on stderr per tda.v1 call (health checks and reflection
// are not logged), written when the call sends its status, as one JSON object:
//
//   {"call_log":1,"request_id":17,"peer":"ipv4:127.0.0.1:40526","caller":"ci",
//    "rpc":"/tda.v1.AttributionService/Attribute","index":"fmnist","queries":3,
//    "batch_queries":8,"latency_ms":12.3,"status":"OK"}
//
// caller: the bearer token's name (server/caller.h; "anonymous" without --auth-tokens); index
// and queries: the request's `index` and `queries` fields, when its message has them;
// request_id: a per-process counter in arrival order; latency: from the call's arrival to its
// status; batch_queries (Attribute, when it computed): the queries of the computation that
// answered the call, more than `queries` when it shared a batch (server/query_batcher.h).
// A gRPC server interceptor, so every service is logged without touching its code.
// With a ServerMetrics, each call is also counted there (tda_requests_total and
// tda_request_duration_seconds: the same rpc, index, status and latency).
//
// Thread-safety: one interceptor per call; lines are written whole (one write each).
#pragma once

#include <grpcpp/support/server_interceptor.h>

namespace tda {

class ServerMetrics;

class CallLogInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  // `metrics` may be null (no metrics); it must outlive the server's calls.
  explicit CallLogInterceptorFactory(ServerMetrics* metrics = nullptr) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  ServerMetrics* metrics_;
};

}  // namespace tda
