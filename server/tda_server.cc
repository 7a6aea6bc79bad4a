#include "server/tda_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include <chrono>
#include <climits>
#include <iostream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/admin_service.h"
#include "server/attribution_service.h"
#include "server/auth_token_processor.h"
#include "server/call_log.h"
#include "server/explorer_routes.h"
#include "server/http_gateway.h"
#include "server/http_listener.h"
#include "server/index_repository.h"
#include "server/job_service.h"
#include "server/server_metrics.h"
#include "server/router_service.h"
#include "server/shard_service.h"

namespace tda {

absl::StatusOr<std::unique_ptr<TdaServer>> TdaServer::Start(const ServerOptions& options) {
  if (options.max_message_bytes <= 0 || options.max_message_bytes > INT_MAX) {
    return absl::InvalidArgumentError(absl::StrCat("max message bytes must be in [1, ", INT_MAX,
                                                   "], got ", options.max_message_bytes));
  }
  if (options.query_slots < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("query slots must be >= 1, got ", options.query_slots));
  }
  if (options.query_queue < 0 || options.caller_queries < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "query queue and caller queries must be >= 0, got ", options.query_queue, " and ",
        options.caller_queries));
  }
  if (options.max_batch_size < 1 || options.max_batch_size > kMaxQueriesPerRequest) {
    return absl::InvalidArgumentError(absl::StrCat("max batch size must be in [1, ",
                                                   kMaxQueriesPerRequest, "] queries, got ",
                                                   options.max_batch_size));
  }
  if (options.batch_timeout_micros < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "batch timeout must be >= 0 microseconds (0: batching off), got ",
        options.batch_timeout_micros));
  }
  const size_t colon = options.listen.rfind(':');
  if (colon == std::string::npos || colon + 1 == options.listen.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen address '", options.listen, "' is not HOST:PORT"));
  }
  // Refuse an unsafe address before the (slow) index opening.
  absl::StatusOr<std::vector<std::string>> warnings =
      CheckListenPolicy(options.listen, options.security);
  if (!warnings.ok()) return warnings.status();
  absl::StatusOr<ShardMap> shard_map = ShardMap{};
  if (!options.router_shard_map.empty()) shard_map = ReadShardMap(options.router_shard_map);
  if (!shard_map.ok()) return shard_map.status();
  absl::StatusOr<std::unique_ptr<IndexRepository>> repository = IndexRepository::Open(
      {options.repository_dir,
       options.router_shard_map.empty() ? options.index_dir : shard_map->local_index, options.pins,
       options.repository_poll_seconds});
  if (!repository.ok()) return repository.status();
  for (const std::string& warning : *warnings) {
    std::cerr << "tda-server: WARNING: " << warning << "\n";
  }
  std::shared_ptr<TokenAuthProcessor> token_processor;
  if (options.security.tokens()) {
    absl::StatusOr<std::shared_ptr<TokenAuthProcessor>> loaded =
        TokenAuthProcessor::Load(options.security.auth_tokens_file);
    if (!loaded.ok()) return loaded.status();
    token_processor = std::move(*loaded);
  }
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      BuildServerCredentials(options.security, token_processor);
  if (!credentials.ok()) return credentials.status();
  std::unique_ptr<HttpListener> http_listener;
  if (!options.http_listen.empty()) {
    absl::StatusOr<std::unique_ptr<HttpListener>> bound =
        HttpListener::Bind({options.http_listen, options.security, options.max_message_bytes});
    if (!bound.ok()) return bound.status();
    http_listener = std::move(*bound);
  }
  std::unique_ptr<HttpListener> metrics_listener;
  if (!options.metrics_listen.empty()) {
    absl::StatusOr<std::unique_ptr<HttpListener>> bound =
        HttpListener::Bind({options.metrics_listen, options.security, 1 << 16, "--metrics-listen"});
    if (!bound.ok()) return bound.status();
    metrics_listener = std::move(*bound);
  }
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  auto server = std::unique_ptr<TdaServer>(new TdaServer());
  server->repository_ = std::move(*repository);
  // The shard and router services use the same limits (they do not batch).
  const AttributionLimits limits{
      options.query_slots, options.query_queue, options.caller_queries,
      BatchingOptions{options.max_batch_size, absl::Microseconds(options.batch_timeout_micros)}};
  server->service_ = std::make_unique<AttributionServiceImpl>(server->repository_.get(), limits);
  server->shard_service_ = std::make_unique<ShardServiceImpl>(server->repository_.get(), limits);
  if (!options.router_shard_map.empty()) {
    absl::StatusOr<std::unique_ptr<RouterServiceImpl>> router =
        RouterServiceImpl::Create(*shard_map, server->repository_.get(), server->service_.get(),
                                  limits, static_cast<int>(options.max_message_bytes));
    if (!router.ok()) return router.status();
    server->router_ = std::move(*router);
  }
  server->token_processor_ = token_processor;
  server->admin_service_ =
      std::make_unique<AdminServiceImpl>(token_processor, server->repository_.get());
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, *credentials, &server->port_);
  builder.RegisterService(server->router_ != nullptr
                              ? static_cast<grpc::Service*>(server->router_.get())
                              : server->service_.get());
  builder.RegisterService(server->shard_service_.get());
  builder.RegisterService(server->admin_service_.get());
  if (!options.state_dir.empty()) {
    JobRunnerOptions jobs = options.jobs;
    jobs.db_path = options.state_dir + "/jobs.db";
    jobs.roots = {options.data_root, options.output_root, options.state_dir};
    jobs.max_active_per_submitter = options.job_quota;
    absl::StatusOr<std::unique_ptr<JobRunner>> runner = JobRunner::Start(jobs);
    if (!runner.ok()) return runner.status();
    server->job_runner_ = std::move(*runner);
    server->job_service_ = std::make_unique<JobServiceImpl>(server->job_runner_.get());
    builder.RegisterService(server->job_service_.get());
  }
  if (metrics_listener != nullptr) {
    server->metrics_ = std::make_unique<ServerMetrics>(
        server->repository_.get(), &server->service_->query_slots(),
        server->job_runner_ != nullptr ? &server->job_runner_->store() : nullptr);
    server->service_->set_metrics(server->metrics_.get());
  }
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> logging;
  logging.push_back(std::make_unique<CallLogInterceptorFactory>(server->metrics_.get()));
  builder.experimental().SetInterceptorCreators(std::move(logging));
  if (http_listener != nullptr) {
    absl::StatusOr<std::unique_ptr<JsonGateway>> gateway =
        JsonGateway::AddPrivatePort(token_processor, options.max_message_bytes, &builder);
    if (!gateway.ok()) return gateway.status();
    server->json_gateway_ = std::move(*gateway);
  }
  // A port in use is refused, not shared with another server (gRPC sets SO_REUSEPORT by
  // default, and two servers on one port would split the callers between them).
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(static_cast<int>(options.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(options.max_message_bytes));
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on '", options.listen, "' (address in use or not local?)"));
  }
  server->address_ = absl::StrCat(options.listen.substr(0, colon), ":", server->port_);
  if (http_listener != nullptr) {
    server->json_gateway_->AddRoutes(&http_listener->routes());
    AddExplorerRoutes(&http_listener->routes());
    http_listener->Serve();
    server->http_listener_ = std::move(http_listener);
  }
  if (metrics_listener != nullptr) {
    // GET /metrics only: other paths answer 404 (httplib's default).
    const ServerMetrics* metrics = server->metrics_.get();
    metrics_listener->AddTextRoute("/metrics", MetricsRegistry::kContentType,
                                   [metrics] { return metrics->Exposition(); });
    metrics_listener->Serve();
    server->metrics_listener_ = std::move(metrics_listener);
  }
  std::cerr << "tda-server: " << (options.security.tls() ? "TLS" : "plaintext")
            << (options.security.tls_client_ca_file.empty() ? "" : ", client certificates required")
            << (options.security.tokens()
                    ? ", bearer tokens from " + options.security.auth_tokens_file
                    : std::string(", no authentication (every caller is anonymous admin)"))
            << "\n";
  grpc::HealthCheckServiceInterface* health = server->server_->GetHealthCheckService();
  if (health != nullptr) {
    health->SetServingStatus(true);
    health->SetServingStatus(v1::AttributionService::service_full_name(), true);
  }
  server->repository_->Start([health](bool healthy) {
    if (health != nullptr) health->SetServingStatus(healthy);
  });
  return server;
}

TdaServer::~TdaServer() {
  Shutdown(0);
  Wait();
}

void TdaServer::Shutdown(double grace_seconds) {
  if (server_ == nullptr || shut_down_.exchange(true)) return;
  if (grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService()) {
    health->SetServingStatus(false);
  }
  const auto deadline = std::chrono::system_clock::now() +
                        std::chrono::milliseconds(static_cast<int64_t>(grace_seconds * 1000));
  server_->Shutdown(deadline);
  // After the gRPC calls: HTTP requests waiting on them (a watch) have their answer by now.
  if (http_listener_ != nullptr) http_listener_->Stop();
  if (metrics_listener_ != nullptr) metrics_listener_->Stop();
  if (job_runner_ != nullptr) job_runner_->Shutdown();
}

std::string TdaServer::http_address() const {
  return http_listener_ != nullptr ? http_listener_->address() : "";
}

std::string TdaServer::http_scheme() const {
  return http_listener_ != nullptr ? http_listener_->scheme() : "";
}

std::string TdaServer::metrics_url() const {
  return metrics_listener_ != nullptr ? absl::StrCat(metrics_listener_->scheme(), "://",
                                                     metrics_listener_->address(), "/metrics")
                                      : "";
}

absl::StatusOr<size_t> TdaServer::ReloadTokens() {
  if (token_processor_ == nullptr) {
    return absl::FailedPreconditionError("the server runs without --auth-tokens");
  }
  return token_processor_->Reload();
}

void TdaServer::RequestIndexReload() { repository_->RequestReload(); }

void TdaServer::Wait() {
  if (server_ != nullptr) server_->Wait();
}

}  // namespace tda
