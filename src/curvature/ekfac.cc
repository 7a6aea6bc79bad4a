#include "curvature/ekfac.h"

#include <Eigen/Eigenvalues>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/safetensors.h"
#include "common/status_macros.h"
#include "model/layer_capture.h"

namespace tda {
namespace {

using json = nlohmann::json;

// Columns of a gradient batch preconditioned together: bounds the temporaries of Apply to a
// few copies of (layer size x kApplyChunk) doubles.
constexpr int64_t kApplyChunk = 256;

constexpr char kFactorsFormat[] = "tda.kronecker_factors";
constexpr char kFactorsVersion[] = "1";

std::string Shape(const Eigen::MatrixXd& m) { return absl::StrCat(m.rows(), "x", m.cols()); }

// Eigendecomposition of a symmetric PSD factor in float64; eigenvalues ascending, rounding
// noise below zero clamped to zero.
void Decompose(const Eigen::MatrixXd& cov, Eigen::MatrixXd* q, Eigen::VectorXd* lambda) {
  const Eigen::MatrixXd sym = 0.5 * (cov + cov.transpose());
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(sym, Eigen::ComputeEigenvectors);
  *q = solver.eigenvectors();
  *lambda = solver.eigenvalues().cwiseMax(0.0);
}

absl::Status CheckLayerShapes(const TrackedLayer& layer, const LayerFactors& f, bool decomposed,
                              bool corrected) {
  const int64_t out = layer.out, cols = layer.cols();
  auto mismatch = [&](const char* what, const std::string& found, const std::string& expected) {
    return absl::InvalidArgumentError(
        absl::StrCat("layer ", layer.name, ": ", what, " is ", found, ", expected ", expected));
  };
  const std::string cc = absl::StrCat(cols, "x", cols), oo = absl::StrCat(out, "x", out);
  if (f.a_cov.rows() != cols || f.a_cov.cols() != cols) return mismatch("A", Shape(f.a_cov), cc);
  if (f.s_cov.rows() != out || f.s_cov.cols() != out) return mismatch("S", Shape(f.s_cov), oo);
  if (decomposed) {
    if (f.q_a.rows() != cols || f.q_a.cols() != cols) return mismatch("Q_A", Shape(f.q_a), cc);
    if (f.q_s.rows() != out || f.q_s.cols() != out) return mismatch("Q_S", Shape(f.q_s), oo);
    if (f.lambda_a.size() != cols) {
      return mismatch("lambda_A", absl::StrCat(f.lambda_a.size()), absl::StrCat(cols));
    }
    if (f.lambda_s.size() != out) {
      return mismatch("lambda_S", absl::StrCat(f.lambda_s.size()), absl::StrCat(out));
    }
  }
  if (corrected && (f.corrected.rows() != out || f.corrected.cols() != cols)) {
    return mismatch("the EK-FAC eigenvalue correction", Shape(f.corrected),
                    absl::StrCat(out, "x", cols));
  }
  return absl::OkStatus();
}

absl::Status CheckFactorsMatchLayout(const KroneckerFactors& factors) {
  if (factors.layers.size() != factors.layout.layers.size()) {
    return absl::InvalidArgumentError(absl::StrCat("factors hold ", factors.layers.size(),
                                                   " layers, layout has ",
                                                   factors.layout.layers.size()));
  }
  return absl::OkStatus();
}

json LayoutToJson(const ParamLayout& layout) {
  json layers = json::array();
  for (const TrackedLayer& l : layout.layers) {
    layers.push_back({{"name", l.name},
                      {"out", l.out},
                      {"in", l.in},
                      {"has_bias", l.has_bias},
                      {"offset", l.offset}});
  }
  return layers;
}

absl::StatusOr<ParamLayout> LayoutFromJson(const std::string& text, const std::string& source) {
  auto corrupt = [&source](const std::string& what) {
    return absl::DataLossError(absl::StrCat(source, ": factor layout ", what));
  };
  json layers = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (layers.is_discarded() || !layers.is_array()) return corrupt("is not a JSON array");
  ParamLayout layout;
  for (const json& l : layers) {
    if (!l.is_object() || !l.contains("name") || !l["name"].is_string() || !l.contains("out") ||
        !l["out"].is_number_integer() || !l.contains("in") || !l["in"].is_number_integer() ||
        !l.contains("has_bias") || !l["has_bias"].is_boolean() || !l.contains("offset") ||
        !l["offset"].is_number_integer()) {
      return corrupt("has a malformed layer entry");
    }
    const int64_t out = l["out"].get<int64_t>(), in = l["in"].get<int64_t>();
    if (out <= 0 || in <= 0 || out > (1 << 20) || in > (1 << 20)) {
      return corrupt(
          absl::StrCat("layer ", l["name"].get<std::string>(), " has invalid size ", out, "x", in));
    }
    const int64_t expected_offset = layout.total();
    layout.Add(l["name"].get<std::string>(), out, in, l["has_bias"].get<bool>());
    if (l["offset"].get<int64_t>() != expected_offset) {
      return corrupt(absl::StrCat("layer ", layout.layers.back().name, " has offset ",
                                  l["offset"].get<int64_t>(), ", expected ", expected_offset));
    }
  }
  return layout;
}

void AddMatrix(SafetensorsWriter* writer, const std::string& name, const Eigen::MatrixXd& m) {
  const RowMatrixXd row_major = m;  // safetensors is row-major
  writer->AddF64(name, {m.rows(), m.cols()}, row_major.data());
}

absl::StatusOr<Eigen::MatrixXd> GetMatrix(const SafetensorsFile& file, const std::string& name,
                                          int64_t rows, int64_t cols) {
  if (!file.Has(name)) {
    return absl::DataLossError(absl::StrCat(file.source(), ": tensor '", name, "' is missing"));
  }
  ASSIGN_OR_RETURN(TensorView view, file.Get(name, DType::kF64, {rows, cols}));
  RowMatrixXd m(rows, cols);
  std::memcpy(m.data(), view.bytes.data(), view.bytes.size());
  if (!m.allFinite()) {
    return absl::DataLossError(absl::StrCat(file.source(), ": tensor '", name, "' holds NaN/Inf"));
  }
  return Eigen::MatrixXd(m);
}

absl::StatusOr<Eigen::VectorXd> GetVector(const SafetensorsFile& file, const std::string& name,
                                          int64_t size) {
  if (!file.Has(name)) {
    return absl::DataLossError(absl::StrCat(file.source(), ": tensor '", name, "' is missing"));
  }
  ASSIGN_OR_RETURN(TensorView view, file.Get(name, DType::kF64, {size}));
  Eigen::VectorXd v(size);
  std::memcpy(v.data(), view.bytes.data(), view.bytes.size());
  if (!v.allFinite()) {
    return absl::DataLossError(absl::StrCat(file.source(), ": tensor '", name, "' holds NaN/Inf"));
  }
  return v;
}

}  // namespace

absl::Status DecomposeFactors(KroneckerFactors* factors) {
  RETURN_IF_ERROR(CheckFactorsMatchLayout(*factors));
  for (size_t l = 0; l < factors->layers.size(); ++l) {
    const TrackedLayer& layer = factors->layout.layers[l];
    LayerFactors& f = factors->layers[l];
    RETURN_IF_ERROR(CheckLayerShapes(layer, f, /*decomposed=*/false, /*corrected=*/false));
    if (!f.a_cov.allFinite()) {
      return absl::FailedPreconditionError(
          absl::StrCat("layer ", layer.name,
                       ": activation covariance A holds NaN or Inf; cannot eigendecompose"));
    }
    if (!f.s_cov.allFinite()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "layer ", layer.name, ": gradient covariance S holds NaN or Inf; cannot eigendecompose"));
    }
    Decompose(f.a_cov, &f.q_a, &f.lambda_a);
    Decompose(f.s_cov, &f.q_s, &f.lambda_s);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<KroneckerPreconditioner>> KroneckerPreconditioner::Create(
    std::shared_ptr<const KroneckerFactors> factors, Method method, const Damping& damping) {
  if (factors == nullptr) return absl::InvalidArgumentError("Kronecker preconditioner: no factors");
  if (method != Method::kEkfac && method != Method::kKfac) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Kronecker preconditioner: method must be ekfac or kfac, got ", MethodName(method)));
  }
  if (!std::isfinite(damping.relative) || damping.relative < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "damping: relative damping must be a finite number >= 0, got ", damping.relative));
  }
  if (damping.absolute && (!std::isfinite(*damping.absolute) || *damping.absolute < 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "damping: absolute damping must be a finite number >= 0, got ", *damping.absolute));
  }
  RETURN_IF_ERROR(CheckFactorsMatchLayout(*factors));

  auto pre = std::unique_ptr<KroneckerPreconditioner>(new KroneckerPreconditioner());
  pre->method_ = method;
  for (size_t l = 0; l < factors->layers.size(); ++l) {
    const TrackedLayer& layer = factors->layout.layers[l];
    const LayerFactors& f = factors->layers[l];
    RETURN_IF_ERROR(CheckLayerShapes(layer, f, /*decomposed=*/true,
                                     /*corrected=*/method == Method::kEkfac));
    Eigen::MatrixXd eig =
        method == Method::kEkfac
            ? f.corrected
            : Eigen::MatrixXd(f.lambda_s.cwiseMax(0.0) * f.lambda_a.cwiseMax(0.0).transpose());
    if (!eig.allFinite() || !f.q_a.allFinite() || !f.q_s.allFinite()) {
      return absl::FailedPreconditionError(
          absl::StrCat("layer ", layer.name, ": eigenbasis or eigenvalues hold NaN or Inf"));
    }
    eig = eig.cwiseMax(0.0);
    const double lambda = damping.absolute ? *damping.absolute : damping.relative * eig.mean();
    if (!(eig.minCoeff() + lambda > 0.0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("layer ", layer.name, ": a damped eigenvalue is zero (smallest eigenvalue ",
                       eig.minCoeff(), ", damping ", lambda, "); use a positive damping"));
    }
    pre->eigenvalues_.push_back(std::move(eig));
    pre->damping_.push_back(lambda);
  }
  pre->factors_ = std::move(factors);
  return pre;
}

absl::StatusOr<Eigen::MatrixXd> KroneckerPreconditioner::Apply(const Eigen::MatrixXd& grads) const {
  const ParamLayout& layout = factors_->layout;
  if (grads.rows() != layout.total()) {
    return absl::InvalidArgumentError(absl::StrCat(MethodName(method_),
                                                   " preconditioner: expected ", layout.total(),
                                                   " gradient rows, got ", grads.rows()));
  }
  if (!grads.allFinite()) {
    return absl::InvalidArgumentError(
        absl::StrCat(MethodName(method_), " preconditioner: gradients hold NaN or Inf"));
  }
  Eigen::MatrixXd result(grads.rows(), grads.cols());
  for (size_t l = 0; l < layout.layers.size(); ++l) {
    const TrackedLayer& layer = layout.layers[l];
    const LayerFactors& f = factors_->layers[l];
    const int64_t out = layer.out, cols = layer.cols(), size = layer.size();
    const Eigen::ArrayXXd damped = eigenvalues_[l].array() + damping_[l];
    for (int64_t q0 = 0; q0 < grads.cols(); q0 += kApplyChunk) {
      const int64_t nq = std::min<int64_t>(kApplyChunk, grads.cols() - q0);
      // Column q of the block is G_q (out x cols) row-major, i.e. G_q^T column-major: the block
      // is the column-major cols x (out * nq) matrix [G_1^T ... G_nq^T].
      const Eigen::MatrixXd block = grads.block(layer.offset, q0, size, nq);
      Eigen::Map<const Eigen::MatrixXd> gt(block.data(), cols, out * nq);
      const Eigen::MatrixXd zt = f.q_a.transpose() * gt;  // [(G_q Q_A)^T ...]
      Eigen::MatrixXd z(out, cols * nq);                  // [G_1 Q_A ... G_nq Q_A]
      for (int64_t q = 0; q < nq; ++q) {
        z.middleCols(q * cols, cols) = zt.middleCols(q * out, out).transpose();
      }
      Eigen::MatrixXd v = f.q_s.transpose() * z;  // [Q_S^T G_q Q_A ...]
      for (int64_t q = 0; q < nq; ++q) v.middleCols(q * cols, cols).array() /= damped;
      z.noalias() = f.q_s * v;
      Eigen::MatrixXd ut(cols, out * nq);
      for (int64_t q = 0; q < nq; ++q) {
        ut.middleCols(q * out, out) = z.middleCols(q * cols, cols).transpose();
      }
      // Each column's layer block is contiguous but blocks of successive columns are not, so
      // write per column: (G'_q)^T = Q_A (Q_S V_q)^T.
      const Eigen::MatrixXd back = f.q_a * ut;
      for (int64_t q = 0; q < nq; ++q) {
        Eigen::Map<Eigen::MatrixXd>(result.col(q0 + q).data() + layer.offset, cols, out) =
            back.middleCols(q * out, out);
      }
    }
  }
  return result;
}

absl::Status SaveFactors(const KroneckerFactors& factors, const std::string& path) {
  RETURN_IF_ERROR(CheckFactorsMatchLayout(factors));
  SafetensorsWriter writer;
  for (size_t l = 0; l < factors.layers.size(); ++l) {
    const TrackedLayer& layer = factors.layout.layers[l];
    const LayerFactors& f = factors.layers[l];
    RETURN_IF_ERROR(CheckLayerShapes(layer, f, /*decomposed=*/true, /*corrected=*/true));
    AddMatrix(&writer, layer.name + ".a_cov", f.a_cov);
    AddMatrix(&writer, layer.name + ".s_cov", f.s_cov);
    AddMatrix(&writer, layer.name + ".q_a", f.q_a);
    AddMatrix(&writer, layer.name + ".q_s", f.q_s);
    AddMatrix(&writer, layer.name + ".corrected", f.corrected);
    writer.AddF64(layer.name + ".lambda_a", {f.lambda_a.size()}, f.lambda_a.data());
    writer.AddF64(layer.name + ".lambda_s", {f.lambda_s.size()}, f.lambda_s.data());
  }
  writer.SetMetadata("format", kFactorsFormat);
  writer.SetMetadata("version", kFactorsVersion);
  writer.SetMetadata("layout", LayoutToJson(factors.layout).dump());
  writer.SetMetadata("examples", absl::StrCat(factors.examples));
  writer.SetMetadata("fisher", factors.fisher);
  return writer.WriteAtomically(path);
}

absl::StatusOr<KroneckerFactors> LoadFactors(const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file, SafetensorsFile::Read(path));
  const auto& meta = file->metadata();
  auto field = [&](const std::string& key) -> absl::StatusOr<std::string> {
    auto it = meta.find(key);
    if (it == meta.end()) {
      return absl::DataLossError(absl::StrCat(path, ": factor metadata '", key, "' is missing"));
    }
    return it->second;
  };
  ASSIGN_OR_RETURN(std::string format, field("format"));
  ASSIGN_OR_RETURN(std::string version, field("version"));
  if (format != kFactorsFormat || version != kFactorsVersion) {
    return absl::DataLossError(absl::StrCat(path, ": factor format '", format, "' version ",
                                            version, ", expected '", kFactorsFormat, "' version ",
                                            kFactorsVersion));
  }
  KroneckerFactors factors;
  ASSIGN_OR_RETURN(std::string layout_text, field("layout"));
  ASSIGN_OR_RETURN(factors.layout, LayoutFromJson(layout_text, path));
  ASSIGN_OR_RETURN(std::string examples, field("examples"));
  char* end = nullptr;
  factors.examples = std::strtoll(examples.c_str(), &end, 10);
  if (examples.empty() || *end != '\0' || factors.examples < 0) {
    return absl::DataLossError(absl::StrCat(path, ": examples '", examples, "' is not a count"));
  }
  ASSIGN_OR_RETURN(factors.fisher, field("fisher"));
  if (factors.fisher != "true" && factors.fisher != "empirical") {
    return absl::DataLossError(
        absl::StrCat(path, ": fisher is '", factors.fisher, "', expected 'true' or 'empirical'"));
  }
  for (const TrackedLayer& layer : factors.layout.layers) {
    const int64_t out = layer.out, cols = layer.cols();
    const std::string& n = layer.name;
    LayerFactors f;
    ASSIGN_OR_RETURN(f.a_cov, GetMatrix(*file, n + ".a_cov", cols, cols));
    ASSIGN_OR_RETURN(f.s_cov, GetMatrix(*file, n + ".s_cov", out, out));
    ASSIGN_OR_RETURN(f.q_a, GetMatrix(*file, n + ".q_a", cols, cols));
    ASSIGN_OR_RETURN(f.q_s, GetMatrix(*file, n + ".q_s", out, out));
    ASSIGN_OR_RETURN(f.corrected, GetMatrix(*file, n + ".corrected", out, cols));
    ASSIGN_OR_RETURN(f.lambda_a, GetVector(*file, n + ".lambda_a", cols));
    ASSIGN_OR_RETURN(f.lambda_s, GetVector(*file, n + ".lambda_s", out));
    factors.layers.push_back(std::move(f));
  }
  return factors;
}

}  // namespace tda
