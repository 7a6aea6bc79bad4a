#include "client/result_format.h"

#include <google/protobuf/util/json_util.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "api/api_conversion.h"

namespace tda {

namespace {

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(message, &out, options).ok()) {
    return "{}\n";
  }
  return out;
}

// A document's text with each character shaded by its tokens' influence: ANSI background
// colours (red = raises the completion's loss when removed, blue = lowers it) when `ansi`,
// otherwise the plain text followed by its five most influential characters. Line breaks are
// shown as U+23CE; a multi-byte UTF-8 character takes the sum of its bytes' scores.
std::string HighlightTokens(const std::string& text, const std::vector<float>& scores, bool ansi) {
  struct Char {
    std::string bytes;
    double score = 0;
  };
  std::vector<Char> chars;
  for (size_t i = 0; i < text.size(); ++i) {
    const bool continuation = (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80;
    if (!continuation || chars.empty()) chars.push_back({});
    chars.back().bytes += text[i] == '\n' ? std::string("\u23ce") : std::string(1, text[i]);
    if (i < scores.size()) chars.back().score += scores[i];
  }
  double scale = 0;
  for (const Char& c : chars) scale = std::max(scale, std::abs(c.score));
  if (scale == 0) scale = 1;
  std::string out = "      ";
  if (ansi) {
    static const int kRed[] = {224, 217, 210, 203, 196}, kBlue[] = {195, 153, 111, 69, 27};
    for (const Char& c : chars) {
      const double v = c.score / scale;
      const int level = std::min(4, static_cast<int>(std::abs(v) * 5));
      if (std::abs(v) < 0.1) {
        out += c.bytes;
      } else {
        absl::StrAppend(&out, "\x1b[48;5;", v > 0 ? kRed[level] : kBlue[level], "m", c.bytes,
                        "\x1b[0m");
      }
    }
    return out + "\n";
  }
  out += absl::StrCat(text.size() > 0 ? "" : "(empty)");
  for (const Char& c : chars) out += c.bytes;
  std::vector<size_t> order(chars.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  const size_t top = std::min<size_t>(5, order.size());
  std::partial_sort(order.begin(), order.begin() + top, order.end(), [&](size_t a, size_t b) {
    return std::abs(chars[a].score) > std::abs(chars[b].score);
  });
  absl::StrAppend(&out, "\n      most influential characters:");
  for (size_t k = 0; k < top; ++k) {
    const size_t i = order[k];
    const size_t from = i >= 8 ? i - 8 : 0;
    std::string context;
    for (size_t j = from; j <= i; ++j) context += chars[j].bytes;
    absl::StrAppendFormat(&out, "  \"%s\" %+.3g", context, chars[i].score);
  }
  return out + "\n";
}

// Documents (no label): id, source, score, the longest span shared verbatim with the
// completion, the start of the text, and per-token influence when it was requested.
void AppendDocumentHits(std::string* out, const char* title, const std::vector<Hit>& hits,
                        bool ansi) {
  constexpr size_t kPreviewBytes = 60;
  absl::StrAppend(out, "  ", title, "\n");
  absl::StrAppendFormat(out, "  %4s  %-26s  %-14s  %12s  %11s  %8s  %8s  %s\n", "rank",
                        "document", "source", "score", "loss change", "pct", "verbatim", "text");
  for (size_t i = 0; i < hits.size(); ++i) {
    const Hit& hit = hits[i];
    std::string preview = hit.preview.substr(0, kPreviewBytes);
    // Do not cut inside a UTF-8 sequence.
    while (!preview.empty() && preview.size() < hit.preview.size() &&
           (static_cast<unsigned char>(hit.preview[preview.size()]) & 0xC0) == 0x80) {
      preview.pop_back();
    }
    if (preview.size() < hit.preview.size()) preview += "\u2026";
    const std::string verbatim =
        hit.shared_span ? absl::StrCat(hit.shared_span->length, " B") : std::string("-");
    absl::StrAppendFormat(out, "  %4d  %-26s  %-14s  %+12.4e  %+11.3e  %8.3f  %8s  %s\n", i + 1,
                          hit.id, hit.source, hit.score, hit.loss_change, hit.percentile, verbatim,
                          preview);
    if (!hit.token_scores.empty()) absl::StrAppend(out, HighlightTokens(hit.text, hit.token_scores, ansi));
  }
}

void AppendHits(std::string* out, const char* title, const std::vector<Hit>& hits,
                const std::vector<std::string>& class_names, bool ansi) {
  if (!hits.empty() && hits[0].label < 0) return AppendDocumentHits(out, title, hits, ansi);
  absl::StrAppend(out, "  ", title, "\n");
  absl::StrAppendFormat(out, "  %4s  %-28s  %-12s  %12s  %11s  %8s\n", "rank", "train id", "label",
                        "score", "loss change", "pct");
  for (size_t i = 0; i < hits.size(); ++i) {
    const Hit& hit = hits[i];
    absl::StrAppendFormat(out, "  %4d  %-28s  %-12s  %+12.4e  %+11.3e  %8.3f\n", i + 1, hit.id,
                          ClassName(class_names, hit.label), hit.score, hit.loss_change,
                          hit.percentile);
  }
}

// The query's scores summed per data source (deleted rows excluded).
void AppendSourceTotals(std::string* out, const std::vector<SourceTotal>& totals) {
  if (totals.empty()) return;
  absl::StrAppend(out, "  per data source (all rows, not only the top-k)\n");
  absl::StrAppendFormat(out, "  %-28s  %8s  %12s  %12s\n", "source", "rows", "sum of scores",
                        "mean score");
  for (const SourceTotal& total : totals) {
    absl::StrAppendFormat(out, "  %-28s  %8d  %+12.4e  %+12.4e\n", total.source, total.count,
                          total.sum, total.mean());
  }
}

// With --by-document: documents ranked by the sum of their rows' (chunks') scores.
void AppendDocumentTotals(std::string* out, const char* title,
                          const std::vector<DocumentTotal>& totals) {
  absl::StrAppend(out, "  ", title, "\n");
  absl::StrAppendFormat(out, "  %4s  %-26s  %-14s  %6s  %13s  %-28s  %12s\n", "rank", "document",
                        "source", "chunks", "sum of scores", "best chunk", "its score");
  for (size_t i = 0; i < totals.size(); ++i) {
    const DocumentTotal& t = totals[i];
    absl::StrAppendFormat(out, "  %4d  %-26s  %-14s  %6d  %+13.4e  %-28s  %+12.4e\n", i + 1,
                          t.document_id, t.source, t.chunks, t.sum, t.best_row_id, t.best_score);
  }
}

void AppendDocuments(std::string* out, const QueryResult& r) {
  if (r.proponent_documents.empty() && r.opponent_documents.empty()) return;
  AppendDocumentTotals(out, "proponent documents (their chunks' scores summed)",
                       r.proponent_documents);
  AppendDocumentTotals(out, "opponent documents", r.opponent_documents);
}

}  // namespace

std::string MessageToJson(const google::protobuf::Message& message) { return ToJson(message); }

std::string ClassName(const std::vector<std::string>& class_names, int32_t label) {
  if (label < 0) return "-";
  if (static_cast<size_t>(label) < class_names.size()) return class_names[label];
  return absl::StrCat("class ", label);
}

std::string FormatResultsTable(const std::vector<QueryResult>& results,
                               const std::vector<std::string>& class_names, bool ansi) {
  std::string out;
  for (const QueryResult& r : results) {
    absl::StrAppend(&out, "query ", r.query_id, "\n");
    if (absl::StartsWith(r.query_id, "text:")) {
      absl::StrAppendFormat(&out, "  completion loss = %.4f nats (p = %.3g)\n", r.loss,
                            r.label_probability);
      AppendHits(&out, "proponents (positive: removing them would raise the completion's loss)",
                 r.proponents, class_names, ansi);
      AppendHits(&out, "opponents (negative: removing them would lower the completion's loss)",
                 r.opponents, class_names, ansi);
      AppendDocuments(&out, r);
      AppendSourceTotals(&out, r.source_totals);
      absl::StrAppend(&out, "\n");
      continue;
    }
    absl::StrAppend(&out, "  true label: ", ClassName(class_names, r.true_label),
                    "   predicted: ", ClassName(class_names, r.predicted_label));
    if (r.true_label >= 0) {
      absl::StrAppend(&out, r.true_label == r.predicted_label ? "   (correct)" : "   (WRONG)");
    }
    absl::StrAppendFormat(&out, "\n  measured label: %s   p = %.4f   loss = %.4f\n",
                          ClassName(class_names, r.label), r.label_probability, r.loss);
    AppendHits(&out, "proponents (positive: removing them would raise the query's loss)",
               r.proponents, class_names, ansi);
    AppendHits(&out, "opponents (negative: removing them would lower the query's loss)",
               r.opponents, class_names, ansi);
    AppendDocuments(&out, r);
    AppendSourceTotals(&out, r.source_totals);
    absl::StrAppend(&out, "\n");
  }
  return out;
}

std::string FormatResultsJson(const std::vector<QueryResult>& results, Method method,
                              int64_t index_rows) {
  v1::AttributeResponse response = AttributeResponseToProto(results, method, index_rows);
  for (v1::QueryResult& r : *response.mutable_results()) r.clear_scores();
  return ToJson(response);
}

std::string FormatDescriptionText(const v1::DescribeIndexResponse& d) {
  std::string out;
  absl::StrAppendFormat(&out, "index format v%d: %d rows of %s x %d (%.1f MiB of gradients)\n",
                        d.format_version(), d.rows(), d.dtype(), d.dim(),
                        static_cast<double>(d.gradient_bytes()) / (1 << 20));
  if (d.ensemble_size() > 1) {
    absl::StrAppendFormat(&out,
                          "ensemble:   %d models (scores are their mean; the model below is "
                          "member 0; query with --ensemble-members K for the first K)\n",
                          d.ensemble_size());
  }
  absl::StrAppend(&out, "data set:   ", d.dataset(), " (", d.data_dir(), ")\n");
  const v1::Projection& p = d.projection();
  if (p.dim_per_side() == 0) {
    absl::StrAppend(&out, "projection: none (exact per-sample gradients)\n");
  } else {
    absl::StrAppend(&out, "projection: ", p.kind(), ", ", p.dim_per_side(), " per side, seed ",
                    p.seed(), ", layer dims [", absl::StrJoin(p.layer_dims(), ", "), "]\n");
  }
  const v1::ModelInfo& m = d.model();
  absl::StrAppend(&out, "model:      ", m.kind(), " ", m.input_dim(), "-",
                  absl::StrJoin(m.hidden(), "-"), m.hidden().empty() ? "" : "-", m.num_classes(),
                  " (", m.activation(), "), ", m.parameters(), " parameters",
                  m.weights_dtype().empty() ? "" : absl::StrCat(" held ", m.weights_dtype()),
                  ", fingerprint ", m.fingerprint(), "\n");
  for (const v1::Layer& l : m.layers()) {
    absl::StrAppend(&out, "  layer ", l.name(), ": ", l.out(), " x ", l.in(),
                    l.has_bias() ? " + bias" : "", "\n");
  }
  if (m.has_recipe()) {
    const v1::TrainingRecipe& r = m.recipe();
    absl::StrAppend(&out, "training:   ", r.optimizer(), " lr ", r.learning_rate(),
                    ", weight decay ", r.weight_decay(), ", ", r.epochs(), " epochs of batch ",
                    r.batch_size(), ", seed ", r.seed(), ", ",
                    r.train_size() == 0 ? std::string("all") : absl::StrCat(r.train_size()),
                    " samples\n");
  }
  const v1::FactorsInfo& f = d.factors();
  absl::StrAppend(&out, "factors:    EK-FAC, ", f.fisher(), " Fisher, ", f.examples(),
                  " examples, default damping ", f.default_relative_damping(),
                  " x mean eigenvalue per layer\n");
  std::vector<std::string> methods;
  for (int m : d.methods()) methods.push_back(MethodName(*MethodFromProto(v1::Method(m))));
  absl::StrAppend(&out, "methods:    ", absl::StrJoin(methods, ", "), "\n");
  std::vector<std::string> classes;
  for (int i = 0; i < d.class_names_size(); ++i) {
    classes.push_back(absl::StrCat(i, "=", d.class_names(i)));
  }
  absl::StrAppend(&out, "classes:    ", absl::StrJoin(classes, ", "), "\n");
  return out;
}

std::string FormatDescriptionJson(const v1::DescribeIndexResponse& description) {
  return ToJson(description);
}

}  // namespace tda
