// The Attributor's text queries: a prompt and completion as one query gradient, and the
// per-token scores and shared spans of a language-model index's hits (attributor.h).
#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "attribution/attributor.h"
#include "attribution/index_samples.h"
#include "common/status_macros.h"
#include "data/byte_tokenizer.h"
#include "data/token_rows.h"
#include "data/tokenizer.h"
#include "grad/position_scores.h"
#include "index/index_projection.h"

namespace tda {

absl::StatusOr<Attributor::PreparedQueries> Attributor::PrepareTextQueries(
    const std::vector<Query>& queries, const AttributeOptions& options) const {
  const int64_t q_count = static_cast<int64_t>(queries.size());
  std::vector<std::vector<int32_t>> tokens(queries.size()), targets(queries.size());
  int64_t length = 1;
  for (int64_t q = 0; q < q_count; ++q) {
    if (!queries[q].text.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat("query ", q, ": this index's model is a ", model_->config().kind,
                       " language model; it takes text queries (prompt and completion), and a ",
                       queries[q].sample_id.empty() ? "raw-features" : "sample-id",
                       " query needs an image-model (mlp) index"));
    }
    absl::Status row = MakeCompletionRow(*tokenizer_, model_->config().num_classes,
                                         queries[q].text->prompt, queries[q].text->completion,
                                         model_->config().context_length, &tokens[q], &targets[q]);
    if (!row.ok())
      return absl::InvalidArgumentError(absl::StrCat("query ", q, ": ", row.message()));
    length = std::max<int64_t>(length, static_cast<int64_t>(tokens[q].size()));
  }
  // One batch, rows padded after their completion (no targets there).
  ASSIGN_OR_RETURN(const DocumentMarkers markers, DocumentMarkersOf(*tokenizer_));
  std::vector<int32_t> batch_tokens(static_cast<size_t>(q_count * length), markers.end);
  std::vector<int32_t> batch_targets(static_cast<size_t>(q_count * length), kNoTarget);
  for (int64_t q = 0; q < q_count; ++q) {
    std::copy(tokens[q].begin(), tokens[q].end(), batch_tokens.begin() + q * length);
    std::copy(targets[q].begin(), targets[q].end(), batch_targets.begin() + q * length);
  }
  RETURN_IF_ERROR(options.cancellation.Check());
  ASSIGN_OR_RETURN(BatchCapture capture,
                   model_->Capture(Batch::Sequences(batch_tokens.data(), batch_targets.data(),
                                                    q_count, length)));
  std::vector<QueryResult> results(static_cast<size_t>(q_count));
  for (int64_t q = 0; q < q_count; ++q) {
    results[q].query_id = absl::StrCat("text:", q);
    results[q].loss = capture.losses[q];
    results[q].label_probability = std::exp(-static_cast<double>(capture.losses[q]));
  }
  ASSIGN_OR_RETURN(Eigen::MatrixXd preconditioned, PreconditionedQueries(capture, options));
  return PreparedQueries{std::move(results), std::move(preconditioned)};
}

absl::Status Attributor::ExplainDocuments(const TextQuery& query, const Eigen::VectorXd& direction,
                                          const AttributeOptions& options,
                                          QueryResult* result) const {
  absl::StatusOr<const Dataset*> docs = samples_->IndexRows();
  if (!docs.ok()) {
    // The parroting check is best effort; per-token scores were asked for explicitly.
    if (!options.token_scores) return absl::OkStatus();
    return absl::FailedPreconditionError(
        absl::StrCat("per-token scores need the training documents: ", docs.status().message()));
  }
  std::vector<Hit*> hits;
  for (Hit& hit : result->proponents) hits.push_back(&hit);
  for (Hit& hit : result->opponents) hits.push_back(&hit);
  std::vector<int64_t> rows;
  for (Hit* hit : hits) {
    const std::string& text = (*docs)->previews[hit->row];
    const SharedSpan span = LongestSharedSpan(query.completion, text);
    hit->shared_span = span;
    rows.push_back(hit->row);
  }
  if (!options.token_scores || rows.empty()) return absl::OkStatus();
  const Dataset selected = (*docs)->Select(rows);
  // Per hit and position, summed over the members whose blocks `direction` stacks (an
  // ensemble's carry its 1/m); unit-normalised scores: each member's row norm divides its
  // positions too, so they sum to the score.
  const int64_t dim = index_->dim();
  Eigen::MatrixXd per_position;
  for (int64_t k = 0; k * dim < direction.size(); ++k) {
    const Attributor& m = member(k);
    ASSIGN_OR_RETURN(BatchCapture capture, m.model_->Capture(selected.Rows(0, selected.size())));
    Eigen::MatrixXd own = PerPositionScores(
        m.projection_->ProjectCaptureSides(capture), m.projection_->projected_layout(),
        m.projection_->CorrectProjected(direction.segment(k * dim, dim)));
    if (options.unit_norm) {
      for (size_t h = 0; h < hits.size(); ++h) {
        own.row(static_cast<Eigen::Index>(h)) *= m.InverseRowNorms()[hits[h]->row];
      }
    }
    if (k == 0)
      per_position = std::move(own);
    else
      per_position += own;
  }
  ASSIGN_OR_RETURN(const DocumentMarkers markers, DocumentMarkersOf(*tokenizer_));
  const size_t length = static_cast<size_t>(selected.sequence_length);
  for (size_t h = 0; h < hits.size(); ++h) {
    // Each position's score onto the bytes of the token it predicts (data/token_rows.h); the
    // text is the row's tokens decoded (byte tokens: the document's bytes, cut at the context).
    const size_t width = std::min<size_t>(length, static_cast<size_t>(per_position.cols()));
    std::vector<double> positions(width);
    for (size_t t = 0; t < width; ++t) {
      positions[t] = per_position(static_cast<Eigen::Index>(h), static_cast<Eigen::Index>(t));
    }
    ASSIGN_OR_RETURN(
        ScoredText scored,
        ScoresPerByte(*tokenizer_, markers,
                      absl::MakeConstSpan(&selected.tokens[h * length], width),
                      absl::MakeConstSpan(&selected.targets[h * length], width), positions));
    hits[h]->text = std::move(scored.text);
    hits[h]->token_scores = std::move(scored.byte_scores);
  }
  return absl::OkStatus();
}

}  // namespace tda
