#include "api/api_conversion.h"

#include <algorithm>
#include <limits>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace tda {

v1::Method MethodToProto(Method method) {
  switch (method) {
    case Method::kEkfac:
      return v1::METHOD_EKFAC;
    case Method::kKfac:
      return v1::METHOD_KFAC;
    case Method::kGradientDot:
      return v1::METHOD_GRADIENT_DOT;
    case Method::kLissa:
      return v1::METHOD_LISSA;
    case Method::kExact:
      return v1::METHOD_EXACT;
  }
  return v1::METHOD_UNSPECIFIED;
}

absl::StatusOr<Method> MethodFromProto(v1::Method method) {
  switch (method) {
    case v1::METHOD_UNSPECIFIED:
    case v1::METHOD_EKFAC:
      return Method::kEkfac;
    case v1::METHOD_KFAC:
      return Method::kKfac;
    case v1::METHOD_GRADIENT_DOT:
      return Method::kGradientDot;
    case v1::METHOD_LISSA:
      return Method::kLissa;
    case v1::METHOD_EXACT:
      return Method::kExact;
    default:
      break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown method enum value ", static_cast<int>(method)));
}

namespace {

// An out-of-range value stays out of range (the server refuses it), never wraps.
int32_t ClampToInt32(int64_t value) {
  return static_cast<int32_t>(std::clamp<int64_t>(value, std::numeric_limits<int32_t>::min(),
                                                  std::numeric_limits<int32_t>::max()));
}

}  // namespace

v1::AttributeRequest AttributeRequestToProto(const std::vector<Query>& queries,
                                             const AttributeOptions& options) {
  v1::AttributeRequest request;
  for (const Query& query : queries) {
    v1::Query* q = request.add_queries();
    if (query.text.has_value()) {
      q->mutable_text()->set_prompt(query.text->prompt);
      q->mutable_text()->set_completion(query.text->completion);
    } else if (!query.sample_id.empty()) {
      q->set_sample_id(query.sample_id);
    } else {
      q->mutable_raw()->mutable_features()->Add(query.features.begin(), query.features.end());
    }
    if (query.label >= 0) q->set_label(query.label);
  }
  request.set_top_k(ClampToInt32(options.top_k));
  request.set_method(MethodToProto(options.method));
  if (options.damping.has_value()) {
    if (options.damping->absolute.has_value()) {
      request.mutable_damping()->set_absolute(*options.damping->absolute);
    } else {
      request.mutable_damping()->set_relative(options.damping->relative);
    }
  }
  request.set_return_scores(options.return_scores);
  request.set_token_scores(options.token_scores);
  request.set_group_by_document(options.group_by_document);
  if (options.method == Method::kLissa || options.method == Method::kExact) {
    *request.mutable_lissa() = LissaToProto(options.lissa);
    request.set_curvature(options.exact_curvature == Curvature::kHessian
                              ? v1::CURVATURE_HESSIAN
                              : v1::CURVATURE_GAUSS_NEWTON);
  }
  if (options.approximate.enabled) {
    v1::ApproximateSearch* approximate = request.mutable_approximate();
    approximate->set_enabled(true);
    approximate->set_nprobe(ClampToInt32(options.approximate.nprobe));
    approximate->set_ef_search(ClampToInt32(options.approximate.ef_search));
    approximate->set_candidates(ClampToInt32(options.approximate.candidates));
  }
  request.set_query_rank(ClampToInt32(options.low_rank.rank));
  request.set_low_rank_candidates(ClampToInt32(options.low_rank.candidates));
  request.set_unit_norm(options.unit_norm);
  request.set_adam_correction(options.adam_correction);
  request.set_ensemble_members(ClampToInt32(options.ensemble_members));
  return request;
}

v1::LissaParameters LissaToProto(const LissaOptions& lissa) {
  v1::LissaParameters out;
  out.set_scale(lissa.scale);
  out.set_depth(lissa.depth);
  out.set_tolerance(lissa.tolerance);
  out.set_repeats(lissa.repeats);
  out.set_batch_size(lissa.batch_size);
  return out;
}

absl::StatusOr<LissaOptions> LissaFromProto(const v1::LissaParameters& lissa,
                                            v1::Curvature curvature) {
  LissaOptions out;
  out.scale = lissa.scale();
  if (lissa.has_depth()) out.depth = lissa.depth();
  if (lissa.has_tolerance()) out.tolerance = lissa.tolerance();
  if (lissa.has_repeats()) out.repeats = lissa.repeats();
  if (lissa.has_batch_size()) out.batch_size = lissa.batch_size();
  switch (curvature) {
    case v1::CURVATURE_UNSPECIFIED:
    case v1::CURVATURE_GAUSS_NEWTON:
      out.curvature = Curvature::kGaussNewton;
      break;
    case v1::CURVATURE_HESSIAN:
      out.curvature = Curvature::kHessian;
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat("unknown curvature ", curvature));
  }
  return out;
}

std::optional<Damping> DampingFromProto(const v1::Damping& damping) {
  switch (damping.kind_case()) {
    case v1::Damping::kRelative:
      return Damping{damping.relative(), std::nullopt};
    case v1::Damping::kAbsolute:
      return Damping{0.0, damping.absolute()};
    case v1::Damping::KIND_NOT_SET:
      break;
  }
  return std::nullopt;
}

absl::Status AttributeRequestFromProto(const v1::AttributeRequest& request,
                                       std::vector<Query>* queries, AttributeOptions* options) {
  queries->clear();
  queries->reserve(static_cast<size_t>(request.queries_size()));
  for (int i = 0; i < request.queries_size(); ++i) {
    const v1::Query& q = request.queries(i);
    Query query;
    switch (q.input_case()) {
      case v1::Query::kSampleId:
        if (q.sample_id().empty()) {
          return absl::InvalidArgumentError(absl::StrCat("query ", i, ": sample_id is empty"));
        }
        query.sample_id = q.sample_id();
        break;
      case v1::Query::kRaw:
        query.features.assign(q.raw().features().begin(), q.raw().features().end());
        break;
      case v1::Query::kText:
        query.text = TextQuery{q.text().prompt(), q.text().completion()};
        break;
      case v1::Query::INPUT_NOT_SET:
        return absl::InvalidArgumentError(
            absl::StrCat("query ", i, ": set sample_id or raw input (text for a language model)"));
    }
    if (q.has_label()) {
      if (q.label() < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("query ", i, ": label must be >= 0, got ", q.label()));
      }
      query.label = q.label();
    }
    queries->push_back(std::move(query));
  }
  *options = AttributeOptions{};
  options->top_k = request.has_top_k() ? request.top_k() : kDefaultTopK;
  auto method = MethodFromProto(request.method());
  if (!method.ok()) return method.status();
  options->method = *method;
  options->damping = DampingFromProto(request.damping());
  ASSIGN_OR_RETURN(options->lissa, LissaFromProto(request.lissa(), request.curvature()));
  options->exact_curvature = options->lissa.curvature;
  options->return_scores = request.return_scores();
  options->token_scores = request.token_scores();
  options->group_by_document = request.group_by_document();
  options->approximate.enabled = request.approximate().enabled();
  options->approximate.nprobe = request.approximate().nprobe();
  options->approximate.ef_search = request.approximate().ef_search();
  options->approximate.candidates = request.approximate().candidates();
  options->low_rank.rank = request.query_rank();
  options->low_rank.candidates = request.low_rank_candidates();
  options->unit_norm = request.unit_norm();
  options->adam_correction = request.adam_correction();
  options->ensemble_members = request.ensemble_members();
  return absl::OkStatus();
}

namespace {

void HitToProto(const Hit& hit, v1::Hit* out) {
  out->set_row(hit.row);
  out->set_sample_id(hit.id);
  out->set_source(hit.source);
  out->set_label(hit.label);
  out->set_score(hit.score);
  out->set_loss_change(hit.loss_change);
  out->set_percentile(hit.percentile);
  out->set_preview(hit.preview);
  if (hit.shared_span) {
    v1::SharedSpan* span = out->mutable_shared_span();
    span->set_completion_offset(hit.shared_span->query_offset);
    span->set_document_offset(hit.shared_span->document_offset);
    span->set_length(hit.shared_span->length);
  }
  out->set_text(hit.text);
  out->mutable_token_scores()->Add(hit.token_scores.begin(), hit.token_scores.end());
}

Hit HitFromProto(const v1::Hit& hit) {
  Hit out;
  out.row = hit.row();
  out.id = hit.sample_id();
  out.source = hit.source();
  out.label = hit.label();
  out.score = hit.score();
  out.loss_change = hit.loss_change();
  out.percentile = hit.percentile();
  out.preview = hit.preview();
  if (hit.has_shared_span()) {
    out.shared_span = SharedSpan{hit.shared_span().completion_offset(),
                                 hit.shared_span().document_offset(), hit.shared_span().length()};
  }
  out.text = hit.text();
  out.token_scores.assign(hit.token_scores().begin(), hit.token_scores().end());
  return out;
}

void DocumentTotalToProto(const DocumentTotal& total, v1::DocumentTotal* out) {
  out->set_document_id(total.document_id);
  out->set_source(total.source);
  out->set_chunks(total.chunks);
  out->set_sum(total.sum);
  out->set_best_row(total.best_row);
  out->set_best_row_id(total.best_row_id);
  out->set_best_score(total.best_score);
}

DocumentTotal DocumentTotalFromProto(const v1::DocumentTotal& total) {
  return {total.document_id(), total.source(),      total.chunks(),    total.sum(),
          total.best_row(),    total.best_row_id(), total.best_score()};
}

}  // namespace

void QueryResultToProto(const QueryResult& result, v1::QueryResult* out) {
  out->set_query_id(result.query_id);
  out->set_label(result.label);
  if (result.true_label >= 0) out->set_true_label(result.true_label);
  out->set_predicted_label(result.predicted_label);
  out->set_label_probability(result.label_probability);
  out->set_loss(result.loss);
  for (const Hit& hit : result.proponents) HitToProto(hit, out->add_proponents());
  for (const Hit& hit : result.opponents) HitToProto(hit, out->add_opponents());
  out->mutable_scores()->Add(result.scores.begin(), result.scores.end());
  for (const SourceTotal& total : result.source_totals) {
    v1::SourceTotal* t = out->add_source_totals();
    t->set_source(total.source);
    t->set_sum(total.sum);
    t->set_count(total.count);
    t->set_mean(total.mean());
  }
  for (const DocumentTotal& total : result.proponent_documents) {
    DocumentTotalToProto(total, out->add_proponent_documents());
  }
  for (const DocumentTotal& total : result.opponent_documents) {
    DocumentTotalToProto(total, out->add_opponent_documents());
  }
}

QueryResult QueryResultFromProto(const v1::QueryResult& result) {
  QueryResult out;
  out.query_id = result.query_id();
  out.label = result.label();
  out.true_label = result.has_true_label() ? result.true_label() : -1;
  out.predicted_label = result.predicted_label();
  out.label_probability = result.label_probability();
  out.loss = result.loss();
  for (const v1::Hit& hit : result.proponents()) out.proponents.push_back(HitFromProto(hit));
  for (const v1::Hit& hit : result.opponents()) out.opponents.push_back(HitFromProto(hit));
  out.scores.assign(result.scores().begin(), result.scores().end());
  for (const v1::SourceTotal& total : result.source_totals()) {
    out.source_totals.push_back({total.source(), total.sum(), total.count()});
  }
  for (const v1::DocumentTotal& total : result.proponent_documents()) {
    out.proponent_documents.push_back(DocumentTotalFromProto(total));
  }
  for (const v1::DocumentTotal& total : result.opponent_documents()) {
    out.opponent_documents.push_back(DocumentTotalFromProto(total));
  }
  return out;
}

v1::AttributeResponse AttributeResponseToProto(const std::vector<QueryResult>& results,
                                               Method method, int64_t index_rows) {
  v1::AttributeResponse response;
  for (const QueryResult& result : results) QueryResultToProto(result, response.add_results());
  response.set_method(MethodToProto(method));
  response.set_index_rows(index_rows);
  return response;
}

std::vector<QueryResult> AttributeResponseFromProto(const v1::AttributeResponse& response) {
  std::vector<QueryResult> results;
  results.reserve(static_cast<size_t>(response.results_size()));
  for (const v1::QueryResult& result : response.results()) {
    results.push_back(QueryResultFromProto(result));
  }
  return results;
}

v1::GetSampleResponse SampleToProto(const SampleData& sample, int64_t row) {
  v1::GetSampleResponse out;
  out.set_sample_id(sample.record.id);
  out.set_source(sample.record.source);
  out.set_label(sample.record.label);
  out.set_class_name(sample.class_name);
  out.set_preview(sample.record.preview);
  if (row >= 0) out.set_row(row);
  out.mutable_features()->Add(sample.features.begin(), sample.features.end());
  return out;
}

SampleData SampleFromProto(const v1::GetSampleResponse& sample) {
  SampleData out;
  out.record.id = sample.sample_id();
  out.record.source = sample.source();
  out.record.label = sample.label();
  out.record.preview = sample.preview();
  out.class_name = sample.class_name();
  out.features.assign(sample.features().begin(), sample.features().end());
  return out;
}

}  // namespace tda
