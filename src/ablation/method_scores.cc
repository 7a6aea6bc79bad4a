#include "ablation/method_scores.h"

#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "curvature/ekfac.h"
#include "curvature/exact.h"
#include "curvature/gradient_dot.h"
#include "grad/per_sample_gradients.h"

namespace tda {
namespace {

constexpr int64_t kChunk = 2048;

// A "VmHWM:" / "VmRSS:" line of /proc/self/status, in bytes (0 when
// unavailable).
int64_t ProcStatusBytes(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) != 0) continue;
    std::istringstream fields(line.substr(key.size()));
    int64_t kb = 0;
    fields >> kb;
    return kb * 1024;
  }
  return 0;
}

absl::StatusOr<std::unique_ptr<Preconditioner>> MakePreconditioner(
    Method method, const Model& model, const Dataset& train, const MethodSettings& settings,
    const ProgressFn& progress, std::string* detail) {
  const double lambda = settings.damping;
  *detail = absl::StrCat("lambda ", lambda);
  switch (method) {
    case Method::kGradientDot:
      *detail = "no curvature";
      return std::unique_ptr<Preconditioner>(
          std::make_unique<GradientDotPreconditioner>(model.layout().total()));
    case Method::kEkfac:
    case Method::kKfac: {
      ASSIGN_OR_RETURN(KroneckerFactors fitted,
                       FitKroneckerFactors(model, train, settings.fit, progress));
      auto factors = std::make_shared<const KroneckerFactors>(std::move(fitted));
      Damping damping;
      damping.absolute = lambda;
      ASSIGN_OR_RETURN(std::unique_ptr<KroneckerPreconditioner> p,
                       KroneckerPreconditioner::Create(factors, method, damping));
      return std::unique_ptr<Preconditioner>(std::move(p));
    }
    case Method::kExact: {
      ASSIGN_OR_RETURN(Eigen::MatrixXd curvature,
                       CurvatureMatrix(model, train, settings.curvature, progress));
      ASSIGN_OR_RETURN(std::unique_ptr<ExactPreconditioner> p,
                       ExactPreconditioner::Create(curvature, lambda));
      absl::StrAppend(detail, "; ", CurvatureName(settings.curvature));
      return std::unique_ptr<Preconditioner>(std::move(p));
    }
    case Method::kLissa: {
      LissaOptions options;
      options.damping = lambda;
      options.curvature = settings.curvature;
      options.scale = settings.lissa_scale;
      options.depth = settings.lissa_depth;
      options.repeats = settings.lissa_repeats;
      options.batch_size = settings.lissa_batch_size;
      options.seed = settings.lissa_seed;
      options.progress = progress;
      // Scale <= 0: estimated by Create (and raised if it diverges); depth <= 0: up to
      // max_lissa_depth steps, stopping at LiSSA's residual tolerance.
      options.scale = std::max(0.0, options.scale);
      if (options.depth <= 0) options.depth = settings.max_lissa_depth;
      ASSIGN_OR_RETURN(std::unique_ptr<LissaPreconditioner> p,
                       LissaPreconditioner::Create(model, train, options));
      absl::StrAppend(detail, "; ", CurvatureName(settings.curvature), ", scale ",
                      p->options().scale, ", depth ", options.depth, ", batch ", options.batch_size, ", repeats ",
                      options.repeats);
      return std::unique_ptr<Preconditioner>(std::move(p));
    }
  }
  return absl::InvalidArgumentError("unknown method");
}

}  // namespace

void MemoryProbe::Start() {
  malloc_trim(0);  // return freed heap pages, so reused memory is counted again
                   // when touched
  std::ofstream clear("/proc/self/clear_refs");
  if (clear) clear << "5";
  start_rss_ = ProcStatusBytes("VmRSS:");
}

int64_t MemoryProbe::PeakBytes() const {
  return std::max<int64_t>(0, ProcStatusBytes("VmHWM:") - start_rss_);
}

absl::StatusOr<Eigen::MatrixXd> GradientColumns(const Model& model, const Dataset& data) {
  Eigen::MatrixXd out(model.layout().total(), data.size());
  for (int64_t begin = 0; begin < data.size(); begin += kChunk) {
    const int64_t rows = std::min(kChunk, data.size() - begin);
    ASSIGN_OR_RETURN(BatchCapture capture, model.Capture(data.Rows(begin, begin + rows)));
    out.middleCols(begin, rows) = PerSampleGradientColumns(capture, model.layout());
  }
  return out;
}

absl::StatusOr<double> DefaultDamping(const Model& model, const Dataset& train, double weight_decay,
                                      const FitOptions& fit) {
  ASSIGN_OR_RETURN(KroneckerFactors factors, FitKroneckerFactors(model, train, fit));
  double sum = 0;
  for (const LayerFactors& f : factors.layers) sum += f.corrected.sum();
  return weight_decay + 0.1 * sum / static_cast<double>(model.layout().total());
}

namespace {

// Each column scaled to unit norm (a zero column stays zero).
void UnitColumns(Eigen::MatrixXd* columns) {
  for (Eigen::Index c = 0; c < columns->cols(); ++c) {
    const double norm = columns->col(c).norm();
    if (norm > 0) columns->col(c) /= norm;
  }
}

}  // namespace

absl::StatusOr<MethodScores> ComputeMethodScores(Method method, const Model& model,
                                                 const Dataset& train, const Dataset& queries,
                                                 const MethodSettings& settings,
                                                 const ProgressFn& progress) {
  if (train.size() == 0 || queries.size() == 0) {
    return absl::InvalidArgumentError(absl::StrCat("scores need training samples and queries, got ",
                                                   train.size(), " and ", queries.size()));
  }
  if (!(settings.damping >= 0) || !std::isfinite(settings.damping)) {
    return absl::InvalidArgumentError(
        absl::StrCat("damping must be a finite number >= 0, got ", settings.damping));
  }
  using Clock = std::chrono::steady_clock;
  MemoryProbe memory;
  memory.Start();
  const Clock::time_point start = Clock::now();
  MethodScores out;
  out.method = method;
  ASSIGN_OR_RETURN(std::unique_ptr<Preconditioner> preconditioner,
                   MakePreconditioner(method, model, train, settings, progress, &out.detail));
  ASSIGN_OR_RETURN(Eigen::MatrixXd query_grads,
                   MeasurementGradientColumns(model, queries, settings.measurement));
  if (settings.unit_norm) UnitColumns(&query_grads);
  ASSIGN_OR_RETURN(Eigen::MatrixXd preconditioned, preconditioner->Apply(query_grads));
  query_grads.resize(0, 0);
  out.scores.resize(train.size(), queries.size());
  for (int64_t begin = 0; begin < train.size(); begin += kChunk) {
    const int64_t rows = std::min(kChunk, train.size() - begin);
    ASSIGN_OR_RETURN(BatchCapture capture, model.Capture(train.Rows(begin, begin + rows)));
    const Eigen::MatrixXd gradients = PerSampleGradientColumns(capture, model.layout());
    out.scores.middleRows(begin, rows) = gradients.transpose() * preconditioned;
    if (settings.unit_norm) {
      const Eigen::ArrayXd norms = gradients.colwise().norm().transpose().array();
      out.scores.middleRows(begin, rows).array().colwise() *=
          (norms > 0).select(norms.inverse(), 0.0);
    }
  }
  if (settings.unit_norm) out.detail += out.detail.empty() ? "unit-norm" : "; unit-norm";
  out.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  out.peak_bytes = memory.PeakBytes();
  return out;
}

}  // namespace tda
