#include "server/router_service.h"

#include <grpcpp/client_context.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "api/api_conversion.h"
#include "api/status_conversion.h"
#include "client/channel.h"
#include "common/atomic_file.h"
#include "common/checksum.h"
#include "server/call_cancellation.h"
#include "server/shard_merge.h"

namespace tda {
namespace {

grpc::Status Refuse(const std::string& what) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                      absl::StrCat(what, " is not served by a router of a sharded index (",
                                   "tda-server --router); ask a server of the whole index"));
}

// A shard's failure, named: its code (UNAVAILABLE when down, DEADLINE_EXCEEDED when late).
grpc::Status ShardFailure(const ShardMapEntry& shard, const grpc::Status& status) {
  return grpc::Status(status.error_code(),
                      absl::StrCat(DescribeShard(shard), ": ", status.error_message()));
}

// The local index must hold the parent's model and factors: be a shard of it, or be it.
absl::Status CheckLocalIndex(const ShardMap& map, const GradientIndex& index) {
  const Manifest& m = index.manifest();
  if (m.shard_of.has_value() && m.shard_of->parent_manifest_xxh3 == map.parent_manifest_xxh3) {
    return absl::OkStatus();
  }
  std::string text;
  if (ReadFile(index.dir() + "/" + kManifestFile, &text).ok() &&
      ChecksumHex(Xxh3(text)) == map.parent_manifest_xxh3) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "the shard map's local_index ", index.dir(), " is not a shard of its parent index ",
      map.parent_manifest_xxh3, " (nor that index); point local_index at one of the shards"));
}

absl::StatusOr<ConnectionOptions> ShardConnection(const ShardMap& map, int max_message_bytes) {
  ConnectionOptions options;
  options.tls_ca_file = map.tls_ca_file;
  options.tls_cert_file = map.tls_cert_file;
  options.tls_key_file = map.tls_key_file;
  options.max_message_bytes = max_message_bytes;
  if (!map.token_file.empty()) {
    std::string token;
    if (absl::Status s = ReadFile(map.token_file, &token); !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("shard map security.token_file: ", s.message()));
    }
    options.token = std::string(absl::StripAsciiWhitespace(token.substr(0, token.find('\n'))));
  }
  return options;
}

// The deadline of the calls to the shards: the incoming call's, less a tenth of the time left
// (at most 200 ms) to merge and answer, so that a late shard is reported (or, allowing
// partial answers, left out) before the caller gives up. nullopt: no deadline.
std::optional<std::chrono::system_clock::time_point> FanOutDeadline(
    std::chrono::system_clock::time_point incoming) {
  if (incoming == std::chrono::system_clock::time_point::max()) return std::nullopt;
  const auto left = incoming - std::chrono::system_clock::now();
  const auto reserve = std::min<std::chrono::system_clock::duration>(
      std::max<std::chrono::system_clock::duration>(left / 10, {}), std::chrono::milliseconds(200));
  return incoming - reserve;
}

}  // namespace

RouterServiceImpl::RouterServiceImpl(ShardMap map, const IndexRepository* repository,
                                     AttributionServiceImpl* local, const AttributionLimits& limits)
    : map_(std::move(map)),
      repository_(repository),
      local_(local),
      query_slots_(limits.query_slots, limits.max_queued) {}

absl::StatusOr<std::unique_ptr<RouterServiceImpl>> RouterServiceImpl::Create(
    const ShardMap& map, const IndexRepository* repository, AttributionServiceImpl* local,
    const AttributionLimits& limits, int max_message_bytes) {
  absl::StatusOr<std::shared_ptr<const IndexVersion>> version = repository->Find("");
  if (!version.ok()) return version.status();
  if (absl::Status s = CheckLocalIndex(map, (*version)->attributor().index()); !s.ok()) return s;
  absl::StatusOr<ConnectionOptions> connection = ShardConnection(map, max_message_bytes);
  if (!connection.ok()) return connection.status();
  auto router =
      std::unique_ptr<RouterServiceImpl>(new RouterServiceImpl(map, repository, local, limits));
  for (const ShardMapEntry& entry : map.shards) {
    connection->address = entry.address;
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = CreateChannel(*connection);
    if (!channel.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("shard map: ", DescribeShard(entry), ": ", channel.status().message()));
    }
    router->shards_.push_back({entry, v1::ShardService::NewStub(*channel)});
  }
  return router;
}

grpc::Status RouterServiceImpl::Attribute(grpc::ServerContext* context,
                                          const v1::AttributeRequest* request,
                                          v1::AttributeResponse* response) {
  absl::StatusOr<std::shared_ptr<const IndexVersion>> index = repository_->Find(request->index());
  if (!index.ok()) return ToGrpcStatus(index.status());
  const Attributor& attributor = (*index)->attributor();
  std::vector<Query> queries;
  AttributeOptions options;
  if (absl::Status s = AttributeRequestFromProto(*request, &queries, &options); !s.ok()) {
    return ToGrpcStatus(s);
  }
  if (options.token_scores) return Refuse("token_scores");
  if (options.group_by_document) return Refuse("group_by_document");
  if (options.low_rank.enabled()) return Refuse("query_rank");
  if (options.unit_norm) return Refuse("unit_norm");
  if (options.adam_correction) return Refuse("adam_correction");
  if (options.ensemble_members > 1) return Refuse("ensemble_members");
  options.ensemble_members = 1;  // shards are split from one index: an ensemble's member 0
  if (options.method == Method::kLissa || options.method == Method::kExact) {
    return Refuse(absl::StrCat("method '", MethodName(options.method), "'"));
  }
  options.cancellation = CallCancellation(context);
  absl::StatusOr<Attributor::PreparedQueries> prepared;
  {
    if (absl::Status s = query_slots_.Acquire(options.cancellation); !s.ok()) {
      return ToGrpcStatus(s);
    }
    const absl::Cleanup release = [this] { query_slots_.Release(); };
    prepared = attributor.PrepareQueries(queries, options);
  }
  if (!prepared.ok()) return ToGrpcStatus(prepared.status());

  v1::ScoreShardRequest shard_request;
  shard_request.set_dim(prepared->preconditioned.rows());
  const double* vectors = prepared->preconditioned.data();  // column-major: query after query
  shard_request.mutable_vectors()->Add(vectors, vectors + prepared->preconditioned.size());
  shard_request.set_top_k(static_cast<int32_t>(options.top_k));
  shard_request.set_return_scores(options.return_scores);
  shard_request.set_parent_checksum(map_.parent_manifest_xxh3);
  const std::optional<std::chrono::system_clock::time_point> fan_out_deadline =
      FanOutDeadline(context->deadline());
  std::vector<v1::ScoreShardResponse> answers(shards_.size());
  std::vector<grpc::Status> statuses(shards_.size());
  {
    std::vector<std::thread> calls;
    for (size_t k = 0; k < shards_.size(); ++k) {
      calls.emplace_back([&, k] {
        // Carries the incoming call's cancellation and its deadline, less a reserve.
        std::unique_ptr<grpc::ClientContext> call =
            grpc::ClientContext::FromServerContext(*context);
        if (fan_out_deadline.has_value()) call->set_deadline(*fan_out_deadline);
        v1::ScoreShardRequest mine = shard_request;
        mine.set_index(shards_[k].entry.index);
        mine.set_first_row(shards_[k].entry.first_row);
        mine.set_rows(shards_[k].entry.rows);
        statuses[k] = shards_[k].stub->ScoreShard(call.get(), mine, &answers[k]);
      });
    }
    for (std::thread& call : calls) call.join();
  }
  std::vector<ShardAnswer> answered;
  std::vector<size_t> failed;
  for (size_t k = 0; k < shards_.size(); ++k) {
    if (statuses[k].ok()) {
      answered.push_back({shards_[k].entry.first_row, shards_[k].entry.rows, &answers[k]});
    } else {
      failed.push_back(k);
    }
  }
  if (!failed.empty() && (!request->allow_partial() || answered.empty())) {
    return ShardFailure(shards_[failed.front()].entry, statuses[failed.front()]);
  }
  if (absl::Status s = MergeShardAnswers(answered, options.top_k, options.return_scores,
                                         map_.total_rows, &prepared->results);
      !s.ok()) {
    return ToGrpcStatus(s);
  }
  *response = AttributeResponseToProto(prepared->results, options.method, map_.total_rows);
  for (size_t k : failed) {
    v1::MissingShard* missing = response->add_missing_shards();
    missing->set_address(shards_[k].entry.address);
    missing->set_first_row(shards_[k].entry.first_row);
    missing->set_rows(shards_[k].entry.rows);
    missing->set_error(absl::StrCat(
        absl::StatusCodeToString(static_cast<absl::StatusCode>(statuses[k].error_code())), ": ",
        statuses[k].error_message()));
  }
  return grpc::Status::OK;
}

grpc::Status RouterServiceImpl::DescribeIndex(grpc::ServerContext* context,
                                              const v1::DescribeIndexRequest* request,
                                              v1::DescribeIndexResponse* response) {
  grpc::Status status = local_->DescribeIndex(context, request, response);
  if (status.ok()) response->set_rows(map_.total_rows);
  return status;
}

grpc::Status RouterServiceImpl::ListIndexes(grpc::ServerContext* context,
                                            const v1::ListIndexesRequest* request,
                                            v1::ListIndexesResponse* response) {
  grpc::Status status = local_->ListIndexes(context, request, response);
  for (v1::IndexVersionStatus& entry : *response->mutable_indexes()) {
    if (entry.has_description()) entry.mutable_description()->set_rows(map_.total_rows);
  }
  return status;
}

grpc::Status RouterServiceImpl::GetSample(grpc::ServerContext* context,
                                          const v1::GetSampleRequest* request,
                                          v1::GetSampleResponse* response) {
  return local_->GetSample(context, request, response);
}

grpc::Status RouterServiceImpl::SelfInfluence(grpc::ServerContext*, const v1::SelfInfluenceRequest*,
                                              v1::SelfInfluenceResponse*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                      "a router (tda-server --router) does not compute self-influence; ask the "
                      "shard servers, each for its rows");
}

}  // namespace tda
