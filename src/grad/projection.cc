#include "grad/projection.h"

#include "grad/per_sample_gradients.h"

#include <cmath>
#include <random>

namespace tda {
namespace {

// k x n Gaussian matrix with entries N(0, 1/k), seeded per layer and side.
Eigen::MatrixXd GaussianMatrix(int64_t k, int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0 / std::sqrt(static_cast<double>(k)));
  Eigen::MatrixXd m(k, n);
  for (int64_t i = 0; i < k; ++i) {
    for (int64_t j = 0; j < n; ++j) m(i, j) = normal(rng);
  }
  return m;
}

}  // namespace

Projection::Projection(const ParamLayout& layout, int64_t dim_per_side, uint64_t seed,
                       std::shared_ptr<const AdamCorrection> correction)
    : layout_(layout),
      dim_per_side_(dim_per_side),
      seed_(seed),
      correction_(std::move(correction)) {
  for (size_t l = 0; l < layout.layers.size(); ++l) {
    const TrackedLayer& layer = layout.layers[l];
    LayerProjection p;
    const bool project_out = dim_per_side > 0 && dim_per_side < layer.out;
    const bool project_in = dim_per_side > 0 && dim_per_side < layer.cols();
    p.k_out = project_out ? dim_per_side : layer.out;
    p.k_in = project_in ? dim_per_side : layer.cols();
    // Distinct, reproducible streams for every layer and side.
    const uint64_t layer_seed = seed * 0x9E3779B97F4A7C15ull + 2 * l;
    if (project_out) p.p_out = GaussianMatrix(p.k_out, layer.out, layer_seed);
    if (project_in) p.p_in = GaussianMatrix(p.k_in, layer.cols(), layer_seed + 1);
    p.p_out_f = p.p_out.cast<float>();
    p.p_in_f = p.p_in.cast<float>();
    p.offset = output_dim_;
    output_dim_ += p.k_out * p.k_in;
    projected_layout_.Add(layer.name, p.k_out, p.k_in, /*has_bias=*/false);
    layers_.push_back(std::move(p));
  }
}

std::vector<int64_t> Projection::layer_output_dims() const {
  std::vector<int64_t> dims;
  for (const LayerProjection& p : layers_) dims.push_back(p.k_out * p.k_in);
  return dims;
}

BatchCapture Projection::ProjectCaptureSides(const BatchCapture& uncorrected) const {
  BatchCapture scaled;
  if (correction_ != nullptr && correction_->kind() == AdamCorrectionKind::kRank1) {
    scaled = uncorrected;
    correction_->ScaleSides(&scaled);
  }
  const BatchCapture& capture = scaled.layers.empty() ? uncorrected : scaled;
  BatchCapture out;
  out.samples = capture.samples;
  out.positions = capture.positions;
  out.losses = capture.losses;
  for (size_t l = 0; l < layers_.size(); ++l) {
    const LayerProjection& p = layers_[l];
    const LayerCapture& lc = capture.layers[l];
    LayerCapture projected;
    projected.g = p.p_out_f.size() ? RowMatrixXf(lc.g * p.p_out_f.transpose()) : lc.g;
    projected.a = p.p_in_f.size() ? RowMatrixXf(lc.a * p.p_in_f.transpose()) : lc.a;
    out.layers.push_back(std::move(projected));
  }
  return out;
}

RowMatrixXf Projection::ProjectCapture(const BatchCapture& capture) const {
  return RowsFromProjectedSides(ProjectCaptureSides(capture));
}

RowMatrixXf Projection::RowsFromProjectedSides(const BatchCapture& sides) const {
  RowMatrixXf rows = PerSampleGradients(sides, projected_layout_);
  if (correction_ != nullptr) correction_->ScaleGradients(&rows);
  return rows;
}

Eigen::MatrixXd Projection::ProjectCaptureColumns(const BatchCapture& capture) const {
  return ProjectCapture(capture).cast<double>().transpose();
}

Eigen::VectorXd Projection::CorrectProjected(const Eigen::VectorXd& direction) const {
  if (correction_ == nullptr || correction_->kind() != AdamCorrectionKind::kExact) {
    return direction;
  }
  return direction.cwiseProduct(correction_->exact_multiplier());
}

Eigen::MatrixXd Projection::ProjectColumns(const Eigen::MatrixXd& uncorrected) const {
  Eigen::MatrixXd corrected;
  if (correction_ != nullptr) {
    corrected = correction_->Multiplier().asDiagonal() * uncorrected;
  }
  const Eigen::MatrixXd& grads = correction_ != nullptr ? corrected : uncorrected;
  Eigen::MatrixXd out(output_dim_, grads.cols());
  for (Eigen::Index q = 0; q < grads.cols(); ++q) {
    for (size_t l = 0; l < layers_.size(); ++l) {
      const TrackedLayer& layer = layout_.layers[l];
      const LayerProjection& p = layers_[l];
      Eigen::Map<const RowMatrixXd> g(grads.col(q).data() + layer.offset, layer.out, layer.cols());
      RowMatrixXd left = p.p_out.size() ? RowMatrixXd(p.p_out * g) : RowMatrixXd(g);
      Eigen::Map<RowMatrixXd>(out.col(q).data() + p.offset, p.k_out, p.k_in) =
          p.p_in.size() ? RowMatrixXd(left * p.p_in.transpose()) : left;
    }
  }
  return out;
}

}  // namespace tda
