#include "ablation/source_task_matrix.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/statistics.h"
#include "common/status_macros.h"

namespace tda {
namespace {

// Text safe inside SVG/XML elements and attributes.
std::string XmlEscape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// A CSV field, quoted when it holds a comma, quote or newline.
std::string CsvField(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

// Diverging colour for v in [-1, 1]: blue (-1) - white (0) - red (+1).
std::string Colour(double v) {
  v = std::clamp(v, -1.0, 1.0);
  const int fade = static_cast<int>(std::lround(255 * (1 - std::abs(v))));
  return v >= 0 ? absl::StrFormat("rgb(255,%d,%d)", fade, fade)
                : absl::StrFormat("rgb(%d,%d,255)", fade, fade);
}

}  // namespace

const char* RelationOf(double pearson) {
  if (pearson >= 0.5) return "similar";
  if (pearson <= -0.5) return "opposite";
  if (std::abs(pearson) < 0.2) return "orthogonal";
  return "mixed";
}

absl::StatusOr<SourceTaskMatrix> ComputeSourceTaskMatrix(const Dataset& train,
                                                         const std::vector<AblationTask>& tasks,
                                                         const TrainingScoreFn& scores) {
  const int64_t n = train.size();
  if (tasks.empty()) return absl::InvalidArgumentError("source x task matrix: no tasks");
  if (static_cast<int64_t>(train.sources.size()) != n) {
    return absl::InvalidArgumentError(absl::StrCat("source x task matrix: ", n,
                                                   " training samples but ", train.sources.size(),
                                                   " sources"));
  }
  SourceTaskMatrix out;
  std::map<std::string, std::vector<int64_t>> rows_of;
  for (int64_t i = 0; i < n; ++i) rows_of[train.sources[i]].push_back(i);
  for (const auto& [source, rows] : rows_of) {
    out.sources.push_back(source);
    out.source_sizes.push_back(static_cast<int64_t>(rows.size()));
  }
  out.effect = Eigen::MatrixXd::Zero(static_cast<Eigen::Index>(out.sources.size()),
                                     static_cast<Eigen::Index>(tasks.size()));
  for (size_t t = 0; t < tasks.size(); ++t) {
    const AblationTask& task = tasks[t];
    out.tasks.push_back(task.name);
    if (task.queries.size() == 0) {
      return absl::InvalidArgumentError(absl::StrCat("source x task matrix: task ", task.name,
                                                     " has no queries"));
    }
    ASSIGN_OR_RETURN(Eigen::MatrixXf s, scores(task.queries.Rows(0, task.queries.size())));
    if (s.rows() != n || s.cols() != task.queries.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "source x task matrix: scores for task ", task.name, " are ", s.rows(), " x ", s.cols(),
          ", expected ", n, " x ", task.queries.size()));
    }
    // Mean over the task's queries of each row's score, then summed per source.
    const Eigen::VectorXd row_mean = s.cast<double>().rowwise().mean();
    size_t k = 0;
    for (const auto& [source, rows] : rows_of) {
      double total = 0;
      for (int64_t i : rows) total += row_mean[i];
      out.effect(static_cast<Eigen::Index>(k++), static_cast<Eigen::Index>(t)) =
          total / static_cast<double>(n);
    }
  }
  if (tasks.size() >= 2) {
    for (size_t a = 0; a < out.sources.size(); ++a) {
      for (size_t b = a + 1; b < out.sources.size(); ++b) {
        const double r = Pearson(Eigen::VectorXd(out.effect.row(a).transpose()),
                                 Eigen::VectorXd(out.effect.row(b).transpose()));
        out.pairs.push_back({out.sources[a], out.sources[b], r, RelationOf(r)});
      }
    }
    std::stable_sort(out.pairs.begin(), out.pairs.end(), [](const SourcePair& x, const SourcePair& y) {
      return std::abs(x.pearson) > std::abs(y.pearson);
    });
  }
  return out;
}

std::string SourceTaskMatrixCsv(const SourceTaskMatrix& matrix) {
  std::string out = "source,samples";
  for (const std::string& task : matrix.tasks) absl::StrAppend(&out, ",", CsvField(task));
  out += "\n";
  for (size_t s = 0; s < matrix.sources.size(); ++s) {
    absl::StrAppend(&out, CsvField(matrix.sources[s]), ",", matrix.source_sizes[s]);
    for (size_t t = 0; t < matrix.tasks.size(); ++t) {
      absl::StrAppend(&out, ",", absl::StrFormat("%.6g", matrix.effect(s, t)));
    }
    out += "\n";
  }
  return out;
}

std::string SourceTaskMatrixSvg(const SourceTaskMatrix& matrix, const std::string& title) {
  constexpr int kCellW = 64, kCellH = 22, kLeft = 170, kTop = 150, kLegend = 50;
  const int cols = static_cast<int>(matrix.tasks.size());
  const int rows = static_cast<int>(matrix.sources.size());
  // Room on the right for the last rotated column label, and at least the legend's width.
  const int width = std::max(kLeft + cols * kCellW + 120, 600);
  const int height = kTop + rows * kCellH + kLegend;
  const double scale = std::max(matrix.effect.cwiseAbs().maxCoeff(), 1e-30);
  std::string svg = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
      "font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%%\" height=\"100%%\" "
      "fill=\"white\"/>\n<text x=\"10\" y=\"20\" font-size=\"14\" font-weight=\"bold\">%s</text>\n",
      width, height, XmlEscape(title));
  for (int t = 0; t < cols; ++t) {
    const int x = kLeft + t * kCellW + kCellW / 2;
    absl::StrAppend(&svg, absl::StrFormat("<text transform=\"translate(%d,%d) rotate(-45)\">%s"
                                          "</text>\n",
                                          x, kTop - 6, XmlEscape(matrix.tasks[t])));
  }
  for (int s = 0; s < rows; ++s) {
    const int y = kTop + s * kCellH;
    absl::StrAppend(&svg, absl::StrFormat("<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s (%d)"
                                          "</text>\n",
                                          kLeft - 6, y + 15, XmlEscape(matrix.sources[s]),
                                          matrix.source_sizes[s]));
    for (int t = 0; t < cols; ++t) {
      const double v = matrix.effect(s, t);
      absl::StrAppend(&svg, absl::StrFormat(
          "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\" stroke=\"#ccc\">"
          "<title>%s / %s: %.4g</title></rect>\n<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" "
          "font-size=\"9\">%.2g</text>\n",
          kLeft + t * kCellW, y, kCellW, kCellH, Colour(v / scale), XmlEscape(matrix.sources[s]),
          XmlEscape(matrix.tasks[t]), v, kLeft + t * kCellW + kCellW / 2, y + 15, v));
    }
  }
  absl::StrAppend(&svg, absl::StrFormat(
      "<text x=\"10\" y=\"%d\">red: removing the source raises the task's loss (it helps); "
      "blue: removing it lowers the loss.</text>\n<text x=\"10\" y=\"%d\">Predicted mean "
      "change of a query's loss, max |value| %.3g.</text>\n</svg>\n",
      height - 26, height - 10, scale));
  return svg;
}

}  // namespace tda
