#include "attribution/attributor.h"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "curvature/gradient_dot.h"
#include "data/fashion_mnist.h"
#include "grad/per_sample_gradients.h"

namespace tda {

// The train and test splits of the index's data set, loaded on first use (GetSample and
// queries by id need the features; the index itself stores only gradients and metadata).
struct Attributor::Splits {
  std::string data_dir;
  std::once_flag once[2];
  absl::StatusOr<Dataset> data[2] = {absl::UnknownError("not loaded"), absl::UnknownError("not loaded")};

  absl::StatusOr<const Dataset*> Get(Split split) {
    const int s = split == Split::kTrain ? 0 : 1;
    std::call_once(once[s], [&] { data[s] = LoadFashionMnist(data_dir, split); });
    if (!data[s].ok()) return data[s].status();
    return &*data[s];
  }
};

Attributor::~Attributor() = default;

absl::StatusOr<std::unique_ptr<Attributor>> Attributor::Open(const std::string& index_dir) {
  auto attributor = std::unique_ptr<Attributor>(new Attributor());
  ASSIGN_OR_RETURN(attributor->index_, GradientIndex::Open(index_dir, GradientIndex::Verify::kFull));
  const Manifest& manifest = attributor->index_->manifest();
  ASSIGN_OR_RETURN(attributor->model_, LoadModel(index_dir + "/model"));
  if (attributor->model_->Fingerprint() != manifest.model_fingerprint) {
    return absl::DataLossError(absl::StrCat("index ", index_dir, ": model fingerprint ",
                                            attributor->model_->Fingerprint(),
                                            " != manifest ", manifest.model_fingerprint));
  }
  ASSIGN_OR_RETURN(KroneckerFactors factors, LoadFactors(index_dir + "/factors.safetensors"));
  attributor->factors_ = std::make_shared<const KroneckerFactors>(std::move(factors));
  ASSIGN_OR_RETURN(attributor->default_ekfac_,
                   KroneckerPreconditioner::Create(attributor->factors_, Method::kEkfac, Damping{}));
  attributor->projection_ = std::make_unique<Projection>(
      attributor->model_->layout(), manifest.projection_dim_per_side, manifest.projection_seed);
  if (attributor->projection_->output_dim() != manifest.dim) {
    return absl::DataLossError(absl::StrCat("index ", index_dir, ": projection gives ",
                                            attributor->projection_->output_dim(),
                                            " dimensions, manifest says ", manifest.dim));
  }
  if (attributor->factors_->layout.total() != manifest.dim) {
    return absl::DataLossError(absl::StrCat("index ", index_dir, ": factors cover ",
                                            attributor->factors_->layout.total(),
                                            " dimensions, manifest says ", manifest.dim));
  }
  attributor->splits_ = std::make_unique<Splits>();
  attributor->splits_->data_dir = manifest.data_dir;
  return attributor;
}

const std::vector<std::string>& Attributor::class_names() const { return FashionMnistClassNames(); }

absl::StatusOr<const Dataset*> Attributor::DatasetFor(const std::string& id, int64_t* ordinal) const {
  Split split;
  RETURN_IF_ERROR(ParseFashionMnistId(id, &split, ordinal));
  ASSIGN_OR_RETURN(const Dataset* data, splits_->Get(split));
  if (*ordinal >= data->size()) {
    return absl::InvalidArgumentError(absl::StrCat("unknown sample id '", id, "': ", data->name,
                                                   " has ", data->size(), " samples"));
  }
  return data;
}

absl::StatusOr<SampleData> Attributor::GetSample(const std::string& id) const {
  int64_t ordinal = 0;
  ASSIGN_OR_RETURN(const Dataset* data, DatasetFor(id, &ordinal));
  SampleData out;
  const int64_t row = index_->FindRow(id);
  const int32_t label = data->labels[ordinal];
  out.record = row >= 0 ? index_->sample(row)
                        : SampleRecord{id, data->sources[ordinal], label, data->class_names[label]};
  out.features.assign(data->row(ordinal), data->row(ordinal) + data->feature_dim);
  out.class_name = data->class_names[label];
  return out;
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
      break;
  }
  return absl::UnimplementedError(absl::StrCat(
      "method '", MethodName(options.method),
      "' is not served from an index yet; use ekfac, kfac or gradient-dot"));
}

namespace {

std::vector<Hit> TopHits(const GradientIndex& index, const Eigen::VectorXf& scores, int64_t k,
                         bool largest) {
  std::vector<int64_t> order(static_cast<size_t>(scores.size()));
  std::iota(order.begin(), order.end(), 0);
  k = std::min<int64_t>(k, scores.size());
  auto better = [&](int64_t a, int64_t b) {
    if (scores[a] != scores[b]) return largest ? scores[a] > scores[b] : scores[a] < scores[b];
    return a < b;  // ties: lower row first, so results are deterministic
  };
  std::partial_sort(order.begin(), order.begin() + k, order.end(), better);
  std::vector<Hit> hits;
  for (int64_t i = 0; i < k; ++i) {
    const SampleRecord& s = index.sample(order[i]);
    hits.push_back({order[i], s.id, s.source, s.label, scores[order[i]]});
  }
  return hits;
}

}  // namespace

absl::StatusOr<std::vector<QueryResult>> Attributor::Attribute(const std::vector<Query>& queries,
                                                               const AttributeOptions& options) const {
  if (queries.empty()) return absl::InvalidArgumentError("no queries given");
  if (static_cast<int64_t>(queries.size()) > kMaxQueriesPerRequest) {
    return absl::InvalidArgumentError(absl::StrCat(queries.size(), " queries in one request; the limit is ",
                                                   kMaxQueriesPerRequest));
  }
  if (options.top_k < 1 || options.top_k > kMaxTopK) {
    return absl::InvalidArgumentError(absl::StrCat("top_k must be in [1, ", kMaxTopK, "], got ", options.top_k));
  }
  const ModelConfig& config = model_->config();
  const int64_t q_count = static_cast<int64_t>(queries.size());
  std::vector<float> inputs(static_cast<size_t>(q_count * config.input_dim));
  std::vector<int32_t> labels(static_cast<size_t>(q_count));
  std::vector<QueryResult> results(static_cast<size_t>(q_count));
  for (int64_t q = 0; q < q_count; ++q) {
    const Query& query = queries[q];
    QueryResult& result = results[q];
    if (!query.sample_id.empty()) {
      int64_t ordinal = 0;
      ASSIGN_OR_RETURN(const Dataset* data, DatasetFor(query.sample_id, &ordinal));
      std::copy(data->row(ordinal), data->row(ordinal) + config.input_dim, &inputs[q * config.input_dim]);
      result.query_id = query.sample_id;
      result.true_label = data->labels[ordinal];
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
  ASSIGN_OR_RETURN(Eigen::MatrixXf probs, model_->Predict(inputs.data(), q_count));
  ASSIGN_OR_RETURN(BatchCapture capture, model_->Capture(inputs.data(), labels.data(), q_count));
  std::unique_ptr<Preconditioner> owned;
  const Preconditioner* preconditioner = default_ekfac_.get();
  if (options.method != Method::kEkfac || options.damping.has_value()) {
    ASSIGN_OR_RETURN(owned, MakePreconditioner(options));
    preconditioner = owned.get();
  }
  // Project the query gradients into the index's subspace, precondition there (the factors
  // were fitted in the same subspace), then scan.
  const Eigen::MatrixXd projected =
      projection_->ProjectColumns(PerSampleGradientColumns(capture, model_->layout()));
  ASSIGN_OR_RETURN(Eigen::MatrixXd preconditioned, preconditioner->Apply(projected));
  const Eigen::MatrixXf scores = index_->Score(preconditioned.cast<float>());  // N x Q

  for (int64_t q = 0; q < q_count; ++q) {
    QueryResult& result = results[q];
    Eigen::Index predicted;
    probs.row(q).maxCoeff(&predicted);
    result.predicted_label = static_cast<int32_t>(predicted);
    result.label_probability = probs(q, result.label);
    result.loss = capture.losses[q];
    const Eigen::VectorXf column = scores.col(q);
    result.proponents = TopHits(*index_, column, options.top_k, /*largest=*/true);
    result.opponents = TopHits(*index_, column, options.top_k, /*largest=*/false);
    if (options.return_scores) result.scores.assign(column.data(), column.data() + column.size());
  }
  return results;
}

}  // namespace tda
