#include "attribution/attributor.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "attribution/approximate_scan.h"
#include "attribution/index_samples.h"
#include "attribution/low_rank_queries.h"
#include "attribution/query_validation.h"
#include "attribution/readable_scores.h"
#include "attribution/self_influence.h"
#include "attribution/unit_norm.h"
#include "common/status_macros.h"
#include "curvature/exact.h"
#include "curvature/gradient_dot.h"
#include "data/byte_tokenizer.h"
#include "data/tokenizer.h"
#include "grad/per_sample_gradients.h"
#include "index/index_projection.h"
#include "model/recipe_data.h"

namespace tda {

// The explicit curvature matrices of the exact method (built once per kind, on first use).
struct Attributor::FullCurvature {
  std::mutex mu;
  std::map<Curvature, std::shared_ptr<const Eigen::MatrixXd>> matrices;  // guarded by mu
};

// The rows' inverse norms of unit-normalised queries, computed once.
struct Attributor::RowNormSlot {
  std::once_flag once;
  std::vector<float> inverse;  // written once, under `once`
};

// The index's ANN once opened; a failed open is retried by the next approximate query.
struct Attributor::AnnSlot {
  std::mutex mu;
  std::shared_ptr<const AnnIndex> ann;  // guarded by mu
};

Attributor::~Attributor() = default;

absl::StatusOr<std::unique_ptr<Attributor>> Attributor::OpenOne(const std::string& index_dir,
                                                                GradientIndex::Verify verify) {
  auto attributor = std::unique_ptr<Attributor>(new Attributor());
  ASSIGN_OR_RETURN(attributor->index_, GradientIndex::Open(index_dir, verify));
  const Manifest& manifest = attributor->index_->manifest();
  ASSIGN_OR_RETURN(attributor->model_, LoadModel(index_dir + "/model", &attributor->recipe_));
  if (attributor->model_->Fingerprint() != manifest.model_fingerprint) {
    return absl::DataLossError(absl::StrCat("index ", index_dir, ": model fingerprint ",
                                            attributor->model_->Fingerprint(),
                                            " != manifest ", manifest.model_fingerprint));
  }
  if (attributor->model_->config().is_sequence()) {
    ASSIGN_OR_RETURN(attributor->tokenizer_,
                     RecipeTokenizer(attributor->model_->config(), attributor->recipe_));
  }
  ASSIGN_OR_RETURN(KroneckerFactors factors, LoadFactors(index_dir + "/factors.safetensors"));
  attributor->factors_ = std::make_shared<const KroneckerFactors>(std::move(factors));
  ASSIGN_OR_RETURN(attributor->default_ekfac_,
                   KroneckerPreconditioner::Create(attributor->factors_, Method::kEkfac, Damping{}));
  ASSIGN_OR_RETURN(attributor->projection_,
                   IndexProjection(index_dir, manifest, *attributor->model_));
  if (attributor->projection_->correction() != nullptr) {
    attributor->uncorrected_projection_ = std::make_unique<Projection>(
        attributor->model_->layout(), manifest.projection_dim_per_side, manifest.projection_seed);
  }
  attributor->row_norms_ = std::make_unique<RowNormSlot>();
  if (attributor->factors_->layout.total() != manifest.dim) {
    return absl::DataLossError(absl::StrCat("index ", index_dir, ": factors cover ",
                                            attributor->factors_->layout.total(),
                                            " dimensions, manifest says ", manifest.dim));
  }
  attributor->samples_ = std::make_unique<IndexSamples>(
      *attributor->index_, attributor->model_->config(), attributor->recipe_);
  attributor->full_ = std::make_unique<FullCurvature>();
  attributor->ann_ = std::make_unique<AnnSlot>();
  attributor->documents_ = std::make_unique<IndexDocuments>(
      *attributor->index_,
      attributor->model_->config().is_sequence() && attributor->recipe_.chunk_stride > 0);
  return attributor;
}

absl::StatusOr<const Projection*> Attributor::QueryProjection(
    const AttributeOptions& options) const {
  if (uncorrected_projection_ == nullptr) {
    if (!options.adam_correction) return projection_.get();
    return absl::InvalidArgumentError(absl::StrCat(
        "adam_correction needs an index built with it; index ", index_->dir(),
        " was not (rebuild it with tda build-index --adam-correction, from a model trained "
        "with Adam or AdamW)"));
  }
  return options.adam_correction ? projection_.get() : uncorrected_projection_.get();
}

const std::vector<float>& Attributor::InverseRowNorms() const {
  std::call_once(row_norms_->once, [&] { row_norms_->inverse = tda::InverseRowNorms(*index_); });
  return row_norms_->inverse;
}

const std::vector<std::string>& Attributor::class_names() const {
  return samples_->class_names();
}

absl::StatusOr<SampleData> Attributor::GetSample(const std::string& id) const {
  absl::StatusOr<SampleRef> found = samples_->Find(id);
  // A query naming an unknown sample is a malformed query; asking for it by id is a lookup.
  if (absl::IsInvalidArgument(found.status())) return absl::NotFoundError(found.status().message());
  if (!found.ok()) return found.status();
  const Dataset& data = *found->data;
  const int64_t i = found->row;
  SampleData out;
  const int64_t row = index_->FindRow(id);
  const int32_t label = data.is_sequence() ? -1 : data.labels[i];
  const std::string class_name =
      label >= 0 && label < static_cast<int32_t>(data.class_names.size()) ? data.class_names[label]
                                                                          : "";
  out.record = row >= 0 ? index_->sample(row)
                        : SampleRecord{id, data.sources[i], label,
                                       data.is_sequence() ? OneLinePreview(data.previews[i]) : class_name};
  if (!data.is_sequence()) out.features.assign(data.row(i), data.row(i) + data.feature_dim);
  out.class_name = class_name;
  return out;
}

// An ensemble's self-influence of row i is its score of (i, i): the members' mean.
absl::StatusOr<Eigen::VectorXd> Attributor::SelfInfluence(const AttributeOptions& options,
                                                          const ProgressFn& progress) const {
  return MeanOverMembers(options, [&](const Attributor& m, const Preconditioner& p) {
    return tda::SelfInfluence(*m.index_, p, progress);
  });
}

absl::StatusOr<Eigen::VectorXd> Attributor::DocumentSelfInfluence(
    const AttributeOptions& options, const ProgressFn& progress) const {
  return MeanOverMembers(options, [&](const Attributor& m, const Preconditioner& p) {
    return tda::DocumentSelfInfluence(*m.index_, *m.documents_, p, progress);
  });
}

absl::StatusOr<Eigen::VectorXd> Attributor::MeanOverMembers(
    const AttributeOptions& options,
    const std::function<absl::StatusOr<Eigen::VectorXd>(const Attributor&, const Preconditioner&)>&
        own) const {
  ASSIGN_OR_RETURN(const int64_t used, MembersUsed(options));
  Eigen::VectorXd sum;
  for (int64_t k = 0; k < used; ++k) {
    const Attributor& m = member(k);
    ASSIGN_OR_RETURN(std::unique_ptr<Preconditioner> preconditioner, m.MakePreconditioner(options));
    ASSIGN_OR_RETURN(Eigen::VectorXd values, own(m, *preconditioner));
    if (k == 0) {
      sum = std::move(values);
    } else {
      sum += values;
    }
  }
  return sum / static_cast<double>(used);
}

absl::StatusOr<std::unique_ptr<Preconditioner>> Attributor::MakePreconditioner(
    const AttributeOptions& options) const {
  switch (options.method) {
    case Method::kEkfac:
    case Method::kKfac: {
      ASSIGN_OR_RETURN(std::unique_ptr<KroneckerPreconditioner> p,
                       KroneckerPreconditioner::Create(factors_, options.method,
                                                       options.damping.value_or(Damping{})));
      return std::unique_ptr<Preconditioner>(std::move(p));
    }
    case Method::kGradientDot:
      return std::unique_ptr<Preconditioner>(
          std::make_unique<GradientDotPreconditioner>(projection_->output_dim()));
    case Method::kExact:
    case Method::kLissa:
      return MakeFullPreconditioner(options);
  }
  return absl::UnimplementedError(absl::StrCat(
      "method '", MethodName(options.method),
      "' is not served from an index yet; use ekfac, kfac or gradient-dot"));
}

absl::StatusOr<const Dataset*> Attributor::TrainingData() const {
  absl::StatusOr<const Dataset*> rows = samples_->IndexRows();
  if (!rows.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "LiSSA and exact influence need the training rows of the index: ", rows.status().message()));
  }
  if ((*rows)->feature_dim != model_->config().input_dim) {
    return absl::FailedPreconditionError(absl::StrCat(
        "training data in '", samples_->data_dir(), "' has ", (*rows)->feature_dim,
        " features, the index's model expects ", model_->config().input_dim));
  }
  return rows;
}

absl::StatusOr<std::unique_ptr<Preconditioner>> Attributor::MakeFullPreconditioner(
    const AttributeOptions& options) const {
  const Manifest& manifest = index_->manifest();
  if (manifest.projection_dim_per_side != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "method '", MethodName(options.method), "' needs an index of full gradients (projection "
        "dimension 0); this index projects each layer to ", manifest.projection_dim_per_side,
        " per side. Rebuild the index with projection dimension 0 or use ekfac, kfac or "
        "gradient-dot"));
  }
  const Damping damping = options.damping.value_or(Damping{});
  double lambda = 0;
  if (damping.absolute.has_value()) {
    lambda = *damping.absolute;
  } else {
    double eigen_sum = 0;
    for (const LayerFactors& f : factors_->layers) eigen_sum += f.corrected.sum();
    lambda = damping.relative * eigen_sum / static_cast<double>(factors_->layout.total());
  }
  if (!std::isfinite(lambda) || lambda < 0) {
    return absl::InvalidArgumentError(absl::StrCat("damping must be a finite number >= 0, got ", lambda));
  }
  ASSIGN_OR_RETURN(const Dataset* train, TrainingData());
  if (options.method == Method::kLissa) {
    LissaOptions lissa = options.lissa;
    lissa.damping = lambda;
    ASSIGN_OR_RETURN(std::unique_ptr<LissaPreconditioner> p,
                     LissaPreconditioner::Create(*model_, *train, lissa));
    return std::unique_ptr<Preconditioner>(std::move(p));
  }
  std::shared_ptr<const Eigen::MatrixXd> matrix;
  {
    // Built under the lock: concurrent first queries wait instead of building it twice.
    std::lock_guard<std::mutex> lock(full_->mu);
    auto it = full_->matrices.find(options.exact_curvature);
    if (it == full_->matrices.end()) {
      ASSIGN_OR_RETURN(Eigen::MatrixXd built, CurvatureMatrix(*model_, *train, options.exact_curvature));
      it = full_->matrices
               .emplace(options.exact_curvature, std::make_shared<const Eigen::MatrixXd>(std::move(built)))
               .first;
    }
    matrix = it->second;
  }
  ASSIGN_OR_RETURN(std::unique_ptr<ExactPreconditioner> p, ExactPreconditioner::Create(*matrix, lambda));
  return std::unique_ptr<Preconditioner>(std::move(p));
}

namespace {

std::vector<Hit> ToHits(const GradientIndex& index, const std::vector<ScoredRow>& rows) {
  std::vector<Hit> hits;
  hits.reserve(rows.size());
  for (const ScoredRow& row : rows) {
    const SampleRecord& s = index.sample(row.row);
    Hit hit;
    hit.row = row.row;
    hit.id = s.id;
    hit.source = s.source;
    hit.label = s.label;
    hit.score = row.score;
    hit.preview = s.preview;
    hits.push_back(std::move(hit));
  }
  return hits;
}

}  // namespace

absl::StatusOr<std::vector<QueryResult>> Attributor::Attribute(const std::vector<Query>& queries,
                                                               const AttributeOptions& options) const {
  ASSIGN_OR_RETURN(PreparedQueries prepared, PrepareQueries(queries, options));
  RETURN_IF_ERROR(ScoreQueries(prepared.preconditioned, options, &prepared.results));
  if (!model_->config().is_sequence()) return std::move(prepared.results);
  for (size_t q = 0; q < queries.size(); ++q) {
    RETURN_IF_ERROR(options.cancellation.Check());
    RETURN_IF_ERROR(ExplainDocuments(*queries[q].text, prepared.preconditioned.col(q), options,
                                     &prepared.results[q]));
  }
  return std::move(prepared.results);
}

absl::StatusOr<Attributor::PreparedQueries> Attributor::PrepareOwnQueries(
    const std::vector<Query>& queries, const AttributeOptions& options) const {
  RETURN_IF_ERROR(ValidateAttributeRequest(queries, options));
  const ModelConfig& config = model_->config();
  const int64_t q_count = static_cast<int64_t>(queries.size());
  if (config.is_sequence()) return PrepareTextQueries(queries, options);
  std::vector<float> inputs(static_cast<size_t>(q_count * config.input_dim));
  std::vector<int32_t> labels(static_cast<size_t>(q_count));
  std::vector<QueryResult> results(static_cast<size_t>(q_count));
  for (int64_t q = 0; q < q_count; ++q) {
    const Query& query = queries[q];
    QueryResult& result = results[q];
    if (!query.sample_id.empty()) {
      ASSIGN_OR_RETURN(const SampleRef sample, samples_->Find(query.sample_id));
      const float* row = sample.data->row(sample.row);
      std::copy(row, row + config.input_dim, &inputs[q * config.input_dim]);
      result.query_id = query.sample_id;
      result.true_label = sample.data->labels[sample.row];
    } else if (query.text.has_value()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "query ", q, ": this index's model is an ", config.kind, " over ", config.input_dim,
          " features; a text query (prompt and completion) needs a language-model index"));
    } else {
      if (static_cast<int64_t>(query.features.size()) != config.input_dim) {
        return absl::InvalidArgumentError(absl::StrCat("query ", q, ": raw input has ", query.features.size(),
                                                       " features, the model expects ", config.input_dim));
      }
      if (query.label < 0) {
        return absl::InvalidArgumentError(absl::StrCat("query ", q, ": raw input needs a label to measure"));
      }
      std::copy(query.features.begin(), query.features.end(), &inputs[q * config.input_dim]);
      result.query_id = absl::StrCat("raw:", q);
    }
    result.label = query.label >= 0 ? query.label : result.true_label;
    if (result.label >= config.num_classes) {
      return absl::InvalidArgumentError(absl::StrCat("query ", q, ": label ", result.label,
                                                     " is not in [0, ", config.num_classes, ")"));
    }
    labels[q] = result.label;
  }
  // Model::Capture / Predict validate non-finite inputs and name the offending row.
  const Batch batch = Batch::Classification(inputs.data(), labels.data(), q_count);
  RETURN_IF_ERROR(options.cancellation.Check());
  ASSIGN_OR_RETURN(Eigen::MatrixXf probs, model_->Predict(batch));
  ASSIGN_OR_RETURN(BatchCapture capture, model_->Capture(batch));
  for (int64_t q = 0; q < q_count; ++q) {
    QueryResult& result = results[q];
    Eigen::Index predicted;
    probs.row(q).maxCoeff(&predicted);
    result.predicted_label = static_cast<int32_t>(predicted);
    result.label_probability = probs(q, result.label);
    result.loss = capture.losses[q];
  }
  ASSIGN_OR_RETURN(Eigen::MatrixXd preconditioned, PreconditionedQueries(capture, options));
  return PreparedQueries{std::move(results), std::move(preconditioned)};
}

absl::StatusOr<Eigen::MatrixXd> Attributor::PreconditionedQueries(
    const BatchCapture& capture, const AttributeOptions& options) const {
  RETURN_IF_ERROR(options.cancellation.Check());
  std::unique_ptr<Preconditioner> owned;
  const Preconditioner* preconditioner = default_ekfac_.get();
  if (options.method != Method::kEkfac || options.damping.has_value()) {
    ASSIGN_OR_RETURN(owned, MakePreconditioner(options));
    preconditioner = owned.get();
    RETURN_IF_ERROR(options.cancellation.Check());
  }
  // Project the query gradients into the index's subspace and precondition there (the factors
  // were fitted in the same subspace). They are projected as the index's rows were, from the
  // capture's sides (grad/projection.h), never formed at full size: for a 784-128-10 MLP at 32
  // per side that is 250 times fewer multiply-adds than projecting full gradients.
  ASSIGN_OR_RETURN(const Projection* projection, QueryProjection(options));
  Eigen::MatrixXd gradients = projection->ProjectCaptureColumns(capture);
  if (options.unit_norm) NormaliseColumns(&gradients);
  return preconditioner->Apply(gradients);
}

absl::StatusOr<Eigen::MatrixXf> Attributor::ScoreBatch(const Batch& queries,
                                                       const AttributeOptions& options) const {
  ASSIGN_OR_RETURN(const int64_t used, MembersUsed(options));
  Eigen::MatrixXd stacked;
  for (int64_t k = 0; k < used; ++k) {
    const Attributor& m = member(k);
    ASSIGN_OR_RETURN(BatchCapture capture, m.model_->Capture(queries));
    ASSIGN_OR_RETURN(Eigen::MatrixXd own, m.PreconditionedQueries(capture, options));
    if (k == 0) stacked.resize(used * own.rows(), own.cols());
    stacked.middleRows(k * own.rows(), own.rows()) = own / static_cast<double>(used);
  }
  ScanOptions scan_options;
  scan_options.keep_scores = true;
  ASSIGN_OR_RETURN(ScanResult scan, ScanMembers(stacked, options, scan_options));
  return std::move(scan.scores);
}

absl::StatusOr<std::shared_ptr<const AnnIndex>> Attributor::Ann() const {
  std::lock_guard<std::mutex> lock(ann_->mu);
  if (ann_->ann == nullptr) {
    absl::StatusOr<std::unique_ptr<AnnIndex>> opened = AnnIndex::Open(*index_);
    if (absl::IsNotFound(opened.status())) {
      return absl::FailedPreconditionError(opened.status().message());
    }
    if (!opened.ok()) return opened.status();
    ann_->ann = std::move(*opened);
  }
  return ann_->ann;
}

absl::Status Attributor::ScoreQueries(const Eigen::MatrixXd& preconditioned,
                                      const AttributeOptions& options,
                                      std::vector<QueryResult>* results) const {
  std::optional<ApproximateTopK> candidates;
  if (preconditioned.rows() != index_->dim() &&
      (options.approximate.enabled || LowRankPays(preconditioned.cols(), options.low_rank.rank))) {
    return absl::InvalidArgumentError(
        "approximate and low-rank top-k rank one index's rows; query an ensemble with them "
        "using one member (ensemble_members 1), or without them");
  }
  if (options.approximate.enabled) {
    ASSIGN_OR_RETURN(std::shared_ptr<const AnnIndex> ann, Ann());
    RETURN_IF_ERROR(options.cancellation.Check());
    ASSIGN_OR_RETURN(candidates, ApproximateScan(*index_, *ann, preconditioned.cast<float>(),
                                                 options.top_k, options.approximate));
  } else if (LowRankPays(preconditioned.cols(), options.low_rank.rank)) {
    RETURN_IF_ERROR(options.cancellation.Check());
    ASSIGN_OR_RETURN(candidates, LowRankTopK(*index_, preconditioned, options.top_k,
                                             options.low_rank, options.cancellation));
  }
  if (candidates.has_value()) {
    for (size_t q = 0; q < results->size(); ++q) {
      (*results)[q].proponents = ToHits(*index_, candidates->proponents[q]);
      (*results)[q].opponents = ToHits(*index_, candidates->opponents[q]);
      // Ranks among the candidates: exact unless the candidate search missed a better row.
      SetReadableScores(index_->rows() - index_->deleted_rows(), &(*results)[q].proponents,
                        &(*results)[q].opponents);
    }
    return absl::OkStatus();
  }
  // One pass: top-k heaps and per-source sums are filled while each block's scores are in cache.
  ScanOptions scan_options;
  scan_options.top_k = options.top_k;
  scan_options.source_sums = true;
  // Document totals are summed from the kept score column (document_totals.h).
  scan_options.keep_scores = options.return_scores || options.group_by_document;
  scan_options.cancellation = &options.cancellation;
  RETURN_IF_ERROR(options.cancellation.Check());
  ASSIGN_OR_RETURN(const ScanResult scan, ScanMembers(preconditioned, options, scan_options));

  for (size_t q = 0; q < results->size(); ++q) {
    QueryResult& result = (*results)[q];
    result.proponents = ToHits(*index_, scan.proponents[q]);
    result.opponents = ToHits(*index_, scan.opponents[q]);
    SetReadableScores(index_->rows() - index_->deleted_rows(), &result.proponents,
                      &result.opponents);
    for (size_t s = 0; s < index_->sources().size(); ++s) {
      result.source_totals.push_back(
          {index_->sources()[s], scan.source_sums[q][s], index_->live_rows_of_source(s)});
    }
    if (!scan_options.keep_scores) continue;
    const float* column = scan.scores.col(static_cast<Eigen::Index>(q)).data();
    if (options.group_by_document) {
      documents_->Rank(column, options.top_k, &result.proponent_documents,
                       &result.opponent_documents);
    }
    if (options.return_scores) result.scores.assign(column, column + index_->rows());
  }
  return absl::OkStatus();
}

}  // namespace tda
