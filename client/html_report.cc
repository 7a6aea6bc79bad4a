#include "client/html_report.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/png_encoder.h"
#include "client/result_format.h"

namespace tda {

namespace {

constexpr char kStyle[] = R"(
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 2em; }
.note { color: #555; max-width: 60em; }
.query { display: flex; gap: 2em; align-items: flex-start; border-top: 1px solid #ccc;
         padding-top: 1em; margin-top: 1.5em; }
.row { display: flex; flex-wrap: wrap; gap: 0.6em; margin: 0.3em 0 1em 0; }
.card { width: 96px; font-size: 11px; text-align: center; }
.card img, .card .blank { width: 84px; height: 84px; image-rendering: pixelated;
         border: 3px solid #999; display: block; margin: 0 auto 2px auto; background: #000; }
.pro img { border-color: #2a7; } .opp img { border-color: #c33; }
.card.big { width: 180px; flex-shrink: 0; }
.big img { width: 168px; height: 168px; border-color: #246; }
.wrong { color: #c33; font-weight: bold; } .right { color: #2a7; }
.id { color: #666; word-break: break-all; }
)";

std::string Escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string Image(const ReportInput& input, const std::string& id) {
  auto it = input.features.find(id);
  if (it != input.features.end()) {
    absl::StatusOr<std::string> png = SquareImagePng(it->second);
    if (png.ok()) {
      return absl::StrCat("<img alt=\"", Escape(id), "\" src=\"data:image/png;base64,",
                          absl::Base64Escape(*png), "\">");
    }
  }
  return "<div class=\"blank\"></div>";
}

void AppendHits(std::string* out, const ReportInput& input, const std::vector<Hit>& hits,
                const char* css_class) {
  absl::StrAppend(out, "<div class=\"row\">\n");
  for (size_t i = 0; i < hits.size(); ++i) {
    const Hit& hit = hits[i];
    absl::StrAppend(
        out, "<div class=\"card ", css_class, "\">", Image(input, hit.id),
        absl::StrFormat("#%d %s<br><b>%+.3e</b><br><span class=\"id\">%s</span>", i + 1,
                        Escape(ClassName(input.class_names, hit.label)), hit.score, Escape(hit.id)),
        "</div>\n");
  }
  absl::StrAppend(out, "</div>\n");
}

}  // namespace

std::string RenderHtmlReport(const ReportInput& input) {
  std::string out = absl::StrCat(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>",
      Escape(input.title), "</title>\n<style>", kStyle, "</style></head><body>\n<h1>",
      Escape(input.title),
      "</h1>\n<p class=\"note\">Influence of each training image on the "
      "loss of the query's label (method: ",
      Escape(input.method),
      "). <b>Proponents</b> "
      "(green, positive scores): removing them from training would raise the query's loss. "
      "<b>Opponents</b> (red, negative scores): removing them would lower it.</p>\n");
  for (const QueryResult& r : input.results) {
    const bool known = r.true_label >= 0;
    const bool correct = r.true_label == r.predicted_label;
    absl::StrAppend(&out, "<div class=\"query\"><div class=\"card big\">", Image(input, r.query_id),
                    "<span class=\"id\">", Escape(r.query_id), "</span></div><div>\n");
    absl::StrAppend(&out, "<h2>", Escape(r.query_id), "</h2><p>true label: <b>",
                    Escape(ClassName(input.class_names, r.true_label)), "</b>, predicted: <b>",
                    Escape(ClassName(input.class_names, r.predicted_label)), "</b>");
    if (known) {
      absl::StrAppend(&out, correct ? " <span class=\"right\">(correct)</span>"
                                    : " <span class=\"wrong\">(misclassified)</span>");
    }
    absl::StrAppend(&out, absl::StrFormat("<br>measured label: %s, p = %.4f, loss = %.4f</p>\n",
                                          Escape(ClassName(input.class_names, r.label)),
                                          r.label_probability, r.loss));
    absl::StrAppend(&out, "<h3>Top proponents</h3>\n");
    AppendHits(&out, input, r.proponents, "pro");
    absl::StrAppend(&out, "<h3>Top opponents</h3>\n");
    AppendHits(&out, input, r.opponents, "opp");
    absl::StrAppend(&out, "</div></div>\n");
  }
  absl::StrAppend(&out, "</body></html>\n");
  return out;
}

}  // namespace tda
