// The query path: query sample -> gradient of the measurement (cross-entropy of the query's
// label, or of a label the caller names) -> projection into the index's subspace ->
// preconditioner (fitted in that subspace) -> scan of the index -> top-k proponents (largest
// positive scores) and opponents (most negative scores).
//
// Score sign: score(z_i, z) = grad m(z)^T (H + lambda I)^-1 grad L(z_i). Positive = proponent:
// removing z_i from training would raise the query's loss.
//
// Holds the index, the model and the curvature factors; thread-safe (Attribute is const).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "attribution/approximate_search.h"
#include "attribution/document_totals.h"
#include "attribution/index_samples.h"
#include "attribution/low_rank_options.h"
#include "attribution/shared_span.h"
#include "common/cancellation.h"
#include "common/progress.h"
#include "curvature/ekfac.h"
#include "curvature/lissa.h"
#include "curvature/preconditioner.h"
#include "grad/projection.h"
#include "data/dataset.h"
#include "index/gradient_index.h"
#include "model/model.h"

namespace tda {

class Tokenizer;  // data/tokenizer.h
class AnnIndex;

inline constexpr int64_t kMaxTopK = 10000;
inline constexpr int64_t kMaxQueriesPerRequest = 1024;

// A text query of a sequence (gpt) model: the measurement is the summed log-loss of the
// completion's tokens given the prompt (the prompt's own tokens carry no loss).
struct TextQuery {
  std::string prompt;
  std::string completion;  // non-empty
};

struct Query {
  std::string sample_id;        // a train or test sample id; empty for raw input
  std::vector<float> features;  // raw input (model input_dim floats) when sample_id is empty
  int32_t label = -1;           // measured label; -1 = the sample's own label (required for raw)
  std::optional<TextQuery> text;  // sequence models: the only kind of query they take
};

struct Hit {
  int64_t row = 0;
  std::string id;
  std::string source;
  int32_t label = -1;
  double score = 0;
  std::string preview;  // the index's one-line preview of the sample (documents: their text)
  // Text queries only (training documents read from the index's data directory):
  std::optional<SharedSpan> shared_span;  // longest verbatim overlap with the completion
  std::string text;                 // with token_scores: the document as scored (cut at context)
  // Per byte of `text` (+ end of document): sums to `score`. A multi-byte token's score is spread
  // evenly over its bytes (data/token_rows.h, ScoresPerByte).
  std::vector<float> token_scores;
  // The score on a scale a person can read (attribution/readable_scores.h): the predicted
  // change of the query's loss were this sample removed and the model retrained, score / N (N:
  // the index's live rows, the training samples the curvature averages over), and the share of
  // live rows scoring at most this one, in percent (the top proponent ~100, the top opponent ~0).
  double loss_change = 0;
  double percentile = 0;
};

// The scores of one query summed over the live (not deleted) rows of one data source.
struct SourceTotal {
  std::string source;  // as in samples.tsv, e.g. "fashion-mnist/train"
  double sum = 0;      // in double, over `count` rows
  int64_t count = 0;
  double mean() const { return count > 0 ? sum / static_cast<double>(count) : 0.0; }
};

struct QueryResult {
  std::string query_id;          // sample id, "raw:<n>" for raw input, "text:<n>" for text
  int32_t label = -1;            // label whose loss was measured
  int32_t true_label = -1;       // the sample's own label when known
  int32_t predicted_label = -1;
  double label_probability = 0;  // model's probability of `label` (text: of the completion)
  double loss = 0;               // cross-entropy of `label` (text: summed over the completion)
  std::vector<Hit> proponents;   // descending score
  std::vector<Hit> opponents;    // ascending score (most negative first)
  std::vector<float> scores;     // every index row, index order, when requested (deleted: NaN)
  // Per data source of the index (order of first appearance), always: computed in the same
  // pass as the top-k.
  std::vector<SourceTotal> source_totals;
  // With AttributeOptions::group_by_document: the top_k documents by the sum of their rows'
  // scores (attribution/document_totals.h), proponents descending, opponents ascending.
  std::vector<DocumentTotal> proponent_documents, opponent_documents;
};

struct AttributeOptions {
  int64_t top_k = 10;
  Method method = Method::kEkfac;
  std::optional<Damping> damping;  // default: the index's (0.1 x mean eigenvalue per layer)
  bool return_scores = false;
  // Text queries: per-token influence within each returned document (Hit::token_scores).
  bool token_scores = false;
  // Also rank documents by the sum of their rows' scores (QueryResult::proponent_documents):
  // the chunks of a long document are summed. Keeps every row's score of each query in memory
  // during the call (rows() floats per query).
  bool group_by_document = false;
  // kLissa and kExact (indexes of full gradients only, projection dimension 0): both invert
  // curvature + lambda I with lambda = damping->absolute when set, else damping->relative
  // (default 0.1) x the mean EK-FAC eigenvalue of the whole model (~ trace(GN) / D).
  // lissa.damping is ignored in favour of that lambda; the rest of `lissa` is used as given.
  LissaOptions lissa;
  Curvature exact_curvature = Curvature::kGaussNewton;  // the matrix kExact factorises
  // Top-k from the index's ANN, candidates re-scored exactly (attribution/approximate_scan.h);
  // source_totals stay empty. kFailedPrecondition when the index has no ANN or a stale one.
  ApproximateSearch approximate;
  // Low-rank query batches (attribution/low_rank_queries.h): with more queries than
  // low_rank.rank, the batch is ranked through its rank-r approximation and each query's
  // candidates re-scored exactly; source_totals stay empty. Fewer queries: the exact scan.
  LowRankQueries low_rank;
  // TrackStar's unit normalisation (attribution/unit_norm.h): score = q^T P g_i / (|q| |g_i|).
  // Not with `approximate` or `low_rank` (kInvalidArgument).
  bool unit_norm = false;
  // Correct the query's gradient with the model's Adam second moment before projection, as
  // the index's rows were (grad/adam_correction.h). kInvalidArgument when the index was built
  // without --adam-correction.
  bool adam_correction = false;
  // Ensemble indexes (index/ensemble_manifest.h): score with the mean of the first
  // `ensemble_members` members (0 = all of them; more than the ensemble has is
  // kInvalidArgument). With more than one member, approximate and low_rank are refused, and the
  // result's loss and label_probability are the members' means (predicted_label member 0's).
  int64_t ensemble_members = 0;
  // Attribute stops with its status (kDeadlineExceeded / kCancelled) when this fires: checked
  // between the phases of the query gradient and once per row block of the scan.
  Cancellation cancellation;
};

struct SampleData {
  SampleRecord record;
  std::vector<float> features;
  std::string class_name;
};

class Attributor {
 public:
  // Opens DIR (verifying checksums) and loads the model and factors stored in it. An ensemble
  // directory opens every member (index/ensemble_manifest.h): this Attributor is member 0 (its
  // index(), model() and samples), kDataLoss when the members do not index the same rows.
  // With Verify::kSizes the shards' checksums are not read (a fast start); the caller then
  // verifies them itself (tda-server does, in the background: server/index_verifier.h).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Attributor>> Open(
      const std::string& index_dir, GradientIndex::Verify verify = GradientIndex::Verify::kFull);
  ~Attributor();

  // kInvalidArgument for malformed queries (unknown id, wrong feature count, NaN, label out
  // of range, top_k out of [1, kMaxTopK], too many queries, a text query to an image model or
  // a sample id / raw input to a language model -- the message names the index's model).
  // kDeadlineExceeded / kCancelled when options.cancellation fires. kLissa and kExact need an index
  // of full gradients and the training data it was built from (read from the manifest's
  // data_dir): kFailedPrecondition when the index is projected, the data cannot be loaded or
  // LiSSA diverges; kExact also refuses models over kMaxExactParameters.
  [[nodiscard]] absl::StatusOr<std::vector<QueryResult>> Attribute(const std::vector<Query>& queries,
                                                     const AttributeOptions& options) const;

  // The two halves of Attribute, for a router that scores the rows elsewhere
  // (server/router_service.h). PrepareQueries validates the queries as Attribute does and
  // computes each one's measurement gradient, projected into the index's space and
  // preconditioned there: `preconditioned` is dim() x Q, and `results` carry the queries' ids,
  // labels, losses and predictions but no hits yet. ScoreQueries scans this index with such a
  // matrix and fills each result's proponents, opponents, source totals and, as `options`
  // ask, scores and document rankings (row numbers are this index's).
  struct PreparedQueries {
    std::vector<QueryResult> results;
    Eigen::MatrixXd preconditioned;
  };
  [[nodiscard]] absl::StatusOr<PreparedQueries> PrepareQueries(const std::vector<Query>& queries,
                                                 const AttributeOptions& options) const;
  [[nodiscard]] absl::Status ScoreQueries(const Eigen::MatrixXd& preconditioned,
                                          const AttributeOptions& options,
                                          std::vector<QueryResult>* results) const;

  // A train or test sample by id, with its features (read from the index's data directory).
  // kNotFound for an id that names no sample (malformed, or past the end of its split).
  [[nodiscard]] absl::StatusOr<SampleData> GetSample(const std::string& id) const;

  // Scores of every index row against each row of `queries` (a batch of model inputs with
  // their labels or targets): rows() x Q, tda's sign convention, deleted rows NaN. The method
  // and damping of `options` apply; the rest is ignored. For ablations and batch jobs that
  // measure many queries of a data set at once.
  [[nodiscard]] absl::StatusOr<Eigen::MatrixXf> ScoreBatch(const Batch& queries,
                                             const AttributeOptions& options) const;

  // Self-influence g_i^T (H + lambda I)^-1 g_i of every index row (index order) with the method
  // and damping of `options` (see self_influence.h); the rest of `options` is ignored.
  [[nodiscard]] absl::StatusOr<Eigen::VectorXd> SelfInfluence(const AttributeOptions& options,
                                                const ProgressFn& progress = {}) const;
  // Self-influence of every document of documents() (DocumentSelfInfluence, self_influence.h:
  // the quadratic form of the sum of its rows), with the method and damping of `options`.
  [[nodiscard]] absl::StatusOr<Eigen::VectorXd> DocumentSelfInfluence(const AttributeOptions& options,
                                                        const ProgressFn& progress = {}) const;
  // The index's rows grouped by training document: by chunk id ("<document id>#<k>") when the
  // model was trained with chunking (recipe chunk_stride > 0), else one row per document.
  const IndexDocuments& documents() const { return *documents_; }

  // Members of an ensemble index (1 for a single index); member(0) is this Attributor.
  int64_t ensemble_size() const { return 1 + static_cast<int64_t>(members_.size()); }
  const Attributor& member(int64_t k) const { return k == 0 ? *this : *members_[k - 1]; }
  // Members `options` score with (AttributeOptions::ensemble_members), or kInvalidArgument.
  [[nodiscard]] absl::StatusOr<int64_t> MembersUsed(const AttributeOptions& options) const;

  const GradientIndex& index() const { return *index_; }
  const Model& model() const { return *model_; }
  const std::vector<std::string>& class_names() const;

 private:
  Attributor() = default;
  // Open of one (non-ensemble) index directory.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Attributor>> OpenOne(
      const std::string& index_dir, GradientIndex::Verify verify);
  // Opens members 1.. of the ensemble at `dir` into members_ (attribution/ensemble.cc).
  [[nodiscard]] absl::Status OpenMembers(const std::string& dir, int64_t members,
                                         GradientIndex::Verify verify);
  // The mean over the members `options` use of `own(member, member's preconditioner for
  // options)` (a vector per row or per document).
  [[nodiscard]] absl::StatusOr<Eigen::VectorXd> MeanOverMembers(
      const AttributeOptions& options,
      const std::function<absl::StatusOr<Eigen::VectorXd>(const Attributor&,
                                                          const Preconditioner&)>& own) const;
  // PrepareQueries of this index alone.
  [[nodiscard]] absl::StatusOr<PreparedQueries> PrepareOwnQueries(
      const std::vector<Query>& queries, const AttributeOptions& options) const;
  // The first `used` members' PrepareOwnQueries: their preconditioned blocks stacked (each
  // divided by `used`), the results' losses and probabilities averaged.
  [[nodiscard]] absl::StatusOr<PreparedQueries> PrepareEnsembleQueries(
      const std::vector<Query>& queries, const AttributeOptions& options, int64_t used) const;
  // One scan of the first k members' rows against a stacked (k dim()) x Q matrix: their
  // scores summed (the blocks carry the 1/k). `scan_options.row_scales` is set per member
  // when options.unit_norm; kInvalidArgument when the rows are no multiple of dim().
  [[nodiscard]] absl::StatusOr<ScanResult> ScanMembers(const Eigen::MatrixXd& preconditioned,
                                                       const AttributeOptions& options,
                                                       ScanOptions scan_options) const;
  struct FullCurvature;
  // The training rows of the index (features read from the data directory), for LiSSA/exact.
  [[nodiscard]] absl::StatusOr<const Dataset*> TrainingData() const;
  [[nodiscard]] absl::StatusOr<std::unique_ptr<Preconditioner>> MakeFullPreconditioner(
      const AttributeOptions& options) const;
  [[nodiscard]] absl::StatusOr<std::unique_ptr<Preconditioner>> MakePreconditioner(
      const AttributeOptions& options) const;
  // PrepareQueries for a sequence model (all must be text queries).
  [[nodiscard]] absl::StatusOr<PreparedQueries> PrepareTextQueries(const std::vector<Query>& queries,
                                                     const AttributeOptions& options) const;
  // Query gradients of `capture`, projected into the index's space and preconditioned there:
  // dim() x Q.
  [[nodiscard]] absl::StatusOr<Eigen::MatrixXd> PreconditionedQueries(const BatchCapture& capture,
                                                        const AttributeOptions& options) const;
  // The ANN of the index, opened and verified on first use (kFailedPrecondition / kDataLoss
  // when missing, stale or damaged: AnnIndex::Open).
  [[nodiscard]] absl::StatusOr<std::shared_ptr<const AnnIndex>> Ann() const;
  // Shared spans with the completion and, when requested, per-token scores for every hit of a
  // text query; `direction` is the query's preconditioned gradient (dim()).
  [[nodiscard]] absl::Status ExplainDocuments(const TextQuery& query, const Eigen::VectorXd& direction,
                                const AttributeOptions& options, QueryResult* result) const;

  std::unique_ptr<GradientIndex> index_;
  std::unique_ptr<Model> model_;
  std::shared_ptr<const KroneckerFactors> factors_;
  std::unique_ptr<Preconditioner> default_ekfac_;
  std::unique_ptr<Projection> projection_;  // the rows' (Adam-corrected when the index is)
  // An Adam-corrected index: the same projection without the correction, for queries that do
  // not ask for it; null otherwise.
  std::unique_ptr<Projection> uncorrected_projection_;
  // The projection of the query gradients `options` ask for (kInvalidArgument: see
  // AttributeOptions::adam_correction).
  [[nodiscard]] absl::StatusOr<const Projection*> QueryProjection(const AttributeOptions& options) const;
  // 1 / |row| of every row (attribution/unit_norm.h), computed on first use.
  const std::vector<float>& InverseRowNorms() const;
  struct RowNormSlot;
  std::unique_ptr<RowNormSlot> row_norms_;
  TrainRecipe recipe_;
  // Sequence models: the model's tokenizer (RecipeTokenizer), for text queries and per-token
  // scores.
  std::shared_ptr<const Tokenizer> tokenizer_;
  std::unique_ptr<IndexSamples> samples_;  // after index_, model_ and recipe_, which it uses
  std::unique_ptr<FullCurvature> full_;
  struct AnnSlot;
  std::unique_ptr<AnnSlot> ann_;
  std::unique_ptr<IndexDocuments> documents_;  // after index_ and recipe_
  std::vector<std::unique_ptr<Attributor>> members_;  // an ensemble's members 1..E-1
};

}  // namespace tda
