// The `mlp` architecture: Linear layers (tracked) with ReLU/tanh between them.
#include <torch/torch.h>

#include <cmath>
#include <cstdlib>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "common/checksum.h"
#include "common/safetensors.h"
#include "common/status_macros.h"
#include "model/torch_model.h"

namespace tda {
namespace {

class Mlp final : public TorchModel {
 public:
  explicit Mlp(const ModelConfig& config) : config_(config) {
    int64_t in = config.input_dim;
    std::vector<int64_t> widths = config.hidden;
    widths.push_back(config.num_classes);
    for (size_t i = 0; i < widths.size(); ++i) {
      layout_.Add(absl::StrCat("layers.", i), widths[i], in, /*has_bias=*/true);
      weights_.push_back(torch::zeros({widths[i], in}).set_requires_grad(true));
      biases_.push_back(torch::zeros({widths[i]}).set_requires_grad(true));
      in = widths[i];
    }
  }

  // PyTorch's default nn.Linear initialisation, U(-1/sqrt(in), 1/sqrt(in)) for weight and
  // bias, drawn from a seeded generator of our own so it is reproducible across versions.
  void Initialise(uint64_t seed) {
    std::mt19937_64 rng(seed);
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < weights_.size(); ++i) {
      const double bound = 1.0 / std::sqrt(static_cast<double>(weights_[i].size(1)));
      std::uniform_real_distribution<float> uniform(static_cast<float>(-bound), static_cast<float>(bound));
      for (torch::Tensor* t : {&weights_[i], &biases_[i]}) {
        float* p = t->data_ptr<float>();
        for (int64_t j = 0; j < t->numel(); ++j) p[j] = uniform(rng);
      }
    }
  }

  const ModelConfig& config() const override { return config_; }
  const ParamLayout& layout() const override { return layout_; }

  torch::Tensor Activation(const torch::Tensor& x) const {
    return config_.activation == "tanh" ? torch::tanh(x) : torch::relu(x);
  }

  torch::Tensor Logits(const torch::Tensor& inputs) const override {
    torch::Tensor h = inputs;
    for (size_t i = 0; i < weights_.size(); ++i) {
      h = torch::addmm(biases_[i], h, weights_[i].t());
      if (i + 1 < weights_.size()) h = Activation(h);
    }
    return h;
  }

  std::vector<torch::Tensor> TrainableParameters() override {
    std::vector<torch::Tensor> out;
    for (size_t i = 0; i < weights_.size(); ++i) {
      out.push_back(weights_[i]);
      out.push_back(biases_[i]);
    }
    return out;
  }

  absl::Status CheckInputs(const float* inputs, int64_t rows) const {
    if (rows <= 0) return absl::InvalidArgumentError("empty batch");
    const int64_t n = rows * config_.input_dim;
    for (int64_t i = 0; i < n; ++i) {
      if (!std::isfinite(inputs[i])) {
        return absl::InvalidArgumentError(absl::StrCat("input ", i / config_.input_dim, " feature ",
                                                       i % config_.input_dim, " is not finite"));
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<Eigen::MatrixXf> Predict(const float* inputs, int64_t rows) const override {
    RETURN_IF_ERROR(CheckInputs(inputs, rows));
    return CatchTorchErrors("mlp forward", [&]() -> absl::StatusOr<Eigen::MatrixXf> {
      return PredictUnchecked(inputs, rows);
    });
  }

  Eigen::MatrixXf PredictUnchecked(const float* inputs, int64_t rows) const {
    torch::NoGradGuard no_grad;
    torch::Tensor probs = torch::softmax(Logits(ViewRows(inputs, rows, config_.input_dim)), 1).contiguous();
    Eigen::MatrixXf out(rows, config_.num_classes);
    // Eigen is column-major: copy through a row-major map.
    out = Eigen::Map<const RowMatrixXf>(probs.data_ptr<float>(), rows, config_.num_classes);
    return out;
  }

  absl::StatusOr<BatchCapture> Capture(const float* inputs, const int32_t* labels,
                                       int64_t rows) const override {
    RETURN_IF_ERROR(CheckInputs(inputs, rows));
    for (int64_t i = 0; i < rows; ++i) {
      if (labels[i] < 0 || labels[i] >= config_.num_classes) {
        return absl::InvalidArgumentError(absl::StrCat("label ", labels[i], " of row ", i,
                                                       " is not in [0, ", config_.num_classes, ")"));
      }
    }
    return CatchTorchErrors("mlp capture", [&]() -> absl::StatusOr<BatchCapture> {
      return CaptureUnchecked(inputs, labels, rows);
    });
  }

  BatchCapture CaptureUnchecked(const float* inputs, const int32_t* labels, int64_t rows) const {
    torch::Tensor target = torch::from_blob(const_cast<int32_t*>(labels), {rows}, torch::kInt32)
                               .to(torch::kInt64);
    std::vector<torch::Tensor> layer_inputs, layer_outputs;
    torch::Tensor h = ViewRows(inputs, rows, config_.input_dim);
    for (size_t i = 0; i < weights_.size(); ++i) {
      layer_inputs.push_back(h.detach());
      torch::Tensor s = torch::addmm(biases_[i], h, weights_[i].t());
      layer_outputs.push_back(s);
      h = i + 1 < weights_.size() ? Activation(s) : s;
    }
    torch::Tensor losses = torch::nn::functional::cross_entropy(
        h, target, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
    // Gradients with respect to the layer outputs only: parameter .grad is never touched, so
    // concurrent captures on one model are safe.
    std::vector<torch::Tensor> grads = torch::autograd::grad({losses.sum()}, layer_outputs);

    BatchCapture capture;
    capture.samples = rows;
    capture.positions = 1;
    capture.losses.assign(losses.data_ptr<float>(), losses.data_ptr<float>() + rows);
    for (size_t i = 0; i < weights_.size(); ++i) {
      const TrackedLayer& layer = layout_.layers[i];
      LayerCapture lc;
      lc.a.resize(rows, layer.cols());
      lc.a.leftCols(layer.in) =
          Eigen::Map<const RowMatrixXf>(layer_inputs[i].contiguous().data_ptr<float>(), rows, layer.in);
      lc.a.col(layer.in).setOnes();
      torch::Tensor g = grads[i].contiguous();
      lc.g = Eigen::Map<const RowMatrixXf>(g.data_ptr<float>(), rows, layer.out);
      capture.layers.push_back(std::move(lc));
    }
    return capture;
  }

  absl::StatusOr<Eigen::MatrixXd> CurvatureProduct(const float* inputs, const int32_t* labels,
                                                   int64_t rows, const Eigen::MatrixXd& vectors,
                                                   Curvature kind) const override {
    RETURN_IF_ERROR(CheckInputs(inputs, rows));
    for (int64_t i = 0; i < rows; ++i) {
      if (labels[i] < 0 || labels[i] >= config_.num_classes) {
        return absl::InvalidArgumentError(absl::StrCat("label ", labels[i], " of row ", i,
                                                       " is not in [0, ", config_.num_classes, ")"));
      }
    }
    if (vectors.rows() != layout_.total()) {
      return absl::InvalidArgumentError(absl::StrCat("curvature product: vectors have ", vectors.rows(),
                                                     " rows, the model has ", layout_.total(),
                                                     " parameters"));
    }
    if (!vectors.allFinite()) {
      return absl::InvalidArgumentError("curvature product: vectors hold NaN or Inf");
    }
    return CatchTorchErrors("mlp curvature product", [&]() -> absl::StatusOr<Eigen::MatrixXd> {
      return CurvatureProductUnchecked(inputs, labels, rows, vectors, kind);
    });
  }

  // Per-parameter float64 tensors (w0, b0, w1, b1, ...) holding the flat vector `flat`.
  std::vector<torch::Tensor> SplitFlat(const double* flat) const {
    std::vector<torch::Tensor> out;
    for (const TrackedLayer& layer : layout_.layers) {
      torch::Tensor block = torch::from_blob(const_cast<double*>(flat + layer.offset),
                                             {layer.out, layer.cols()}, torch::kFloat64);
      out.push_back(block.slice(1, 0, layer.in).clone());
      out.push_back(block.select(1, layer.in).clone());
    }
    return out;
  }

  // Writes per-parameter tensors (as SplitFlat returns them; undefined = zero) into `flat`.
  void JoinFlat(const std::vector<torch::Tensor>& parts, double* flat) const {
    for (size_t i = 0; i < layout_.layers.size(); ++i) {
      const TrackedLayer& layer = layout_.layers[i];
      Eigen::Map<RowMatrixXd> block(flat + layer.offset, layer.out, layer.cols());
      const torch::Tensor& w = parts[2 * i];
      const torch::Tensor& b = parts[2 * i + 1];
      if (w.defined()) {
        torch::Tensor wc = w.contiguous();
        block.leftCols(layer.in) = Eigen::Map<const RowMatrixXd>(wc.data_ptr<double>(), layer.out, layer.in);
      } else {
        block.leftCols(layer.in).setZero();
      }
      if (b.defined()) {
        torch::Tensor bc = b.contiguous();
        block.col(layer.in) = Eigen::Map<const Eigen::VectorXd>(bc.data_ptr<double>(), layer.out);
      } else {
        block.col(layer.in).setZero();
      }
    }
  }

  Eigen::MatrixXd CurvatureProductUnchecked(const float* inputs, const int32_t* labels, int64_t rows,
                                            const Eigen::MatrixXd& vectors, Curvature kind) const {
    // float64 copies of the parameters as local leaves: precise, and no autograd state shared
    // with other threads.
    std::vector<torch::Tensor> params;
    for (size_t i = 0; i < weights_.size(); ++i) {
      params.push_back(weights_[i].detach().to(torch::kFloat64).set_requires_grad(true));
      params.push_back(biases_[i].detach().to(torch::kFloat64).set_requires_grad(true));
    }
    torch::Tensor target = torch::from_blob(const_cast<int32_t*>(labels), {rows}, torch::kInt32)
                               .to(torch::kInt64);
    torch::Tensor h = ViewRows(inputs, rows, config_.input_dim).to(torch::kFloat64);
    for (size_t i = 0; i < weights_.size(); ++i) {
      h = torch::addmm(params[2 * i + 1], h, params[2 * i].t());
      if (i + 1 < weights_.size()) h = Activation(h);
    }
    const torch::Tensor logits = h;
    Eigen::MatrixXd out(vectors.rows(), vectors.cols());
    auto dot = [&](const std::vector<torch::Tensor>& a, const double* flat) {
      std::vector<torch::Tensor> v = SplitFlat(flat);
      torch::Tensor sum = torch::zeros({}, torch::kFloat64);
      for (size_t k = 0; k < a.size(); ++k) sum = sum + (a[k] * v[k]).sum();
      return sum;
    };
    if (kind == Curvature::kHessian) {
      torch::Tensor loss = torch::nn::functional::cross_entropy(logits, target);  // mean
      std::vector<torch::Tensor> grads =
          torch::autograd::grad({loss}, params, {}, /*retain_graph=*/true, /*create_graph=*/true);
      for (Eigen::Index c = 0; c < vectors.cols(); ++c) {
        std::vector<torch::Tensor> hv = torch::autograd::grad(
            {dot(grads, vectors.col(c).data())}, params, {}, /*retain_graph=*/true,
            /*create_graph=*/false, /*allow_unused=*/true);
        JoinFlat(hv, out.col(c).data());
      }
      return out;
    }
    // Gauss-Newton: J^T H_out J v. J v comes from the double-backward trick: jtu = J^T u is
    // linear in a dummy output gradient u, so d(jtu . v)/du = J v.
    torch::Tensor u = torch::zeros_like(logits).set_requires_grad(true);
    std::vector<torch::Tensor> jtu =
        torch::autograd::grad({logits}, params, {u}, /*retain_graph=*/true, /*create_graph=*/true);
    const torch::Tensor probs = torch::softmax(logits.detach(), 1);
    for (Eigen::Index c = 0; c < vectors.cols(); ++c) {
      torch::Tensor jv = torch::autograd::grad({dot(jtu, vectors.col(c).data())}, {u}, {},
                                               /*retain_graph=*/true)[0];
      // Output-space Hessian of the mean cross-entropy: (diag(p) - p p^T) / rows per sample.
      torch::Tensor hjv = (probs * jv - probs * (probs * jv).sum(1, /*keepdim=*/true)) /
                          static_cast<double>(rows);
      std::vector<torch::Tensor> jt = torch::autograd::grad({logits}, params, {hjv},
                                                            /*retain_graph=*/true);
      JoinFlat(jt, out.col(c).data());
    }
    return out;
  }

  Eigen::VectorXf Parameters() const override {
    Eigen::VectorXf flat(layout_.total());
    for (size_t i = 0; i < weights_.size(); ++i) {
      const TrackedLayer& layer = layout_.layers[i];
      Eigen::Map<RowMatrixXf> block(flat.data() + layer.offset, layer.out, layer.cols());
      block.leftCols(layer.in) =
          Eigen::Map<const RowMatrixXf>(weights_[i].data_ptr<float>(), layer.out, layer.in);
      block.col(layer.in) = Eigen::Map<const Eigen::VectorXf>(biases_[i].data_ptr<float>(), layer.out);
    }
    return flat;
  }

  absl::Status SetParameters(const Eigen::VectorXf& flat) override {
    if (flat.size() != layout_.total()) {
      return absl::InvalidArgumentError(absl::StrCat("parameter vector has ", flat.size(),
                                                     " entries, model has ", layout_.total()));
    }
    if (!flat.allFinite()) return absl::InvalidArgumentError("parameter vector holds NaN or Inf");
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < weights_.size(); ++i) {
      const TrackedLayer& layer = layout_.layers[i];
      Eigen::Map<const RowMatrixXf> block(flat.data() + layer.offset, layer.out, layer.cols());
      Eigen::Map<RowMatrixXf>(weights_[i].data_ptr<float>(), layer.out, layer.in) = block.leftCols(layer.in);
      Eigen::Map<Eigen::VectorXf>(biases_[i].data_ptr<float>(), layer.out) = block.col(layer.in);
    }
    return absl::OkStatus();
  }

  SafetensorsWriter Weights() const {
    SafetensorsWriter writer;
    for (size_t i = 0; i < weights_.size(); ++i) {
      const std::string& name = layout_.layers[i].name;
      writer.AddF32(name + ".weight", {weights_[i].size(0), weights_[i].size(1)},
                    weights_[i].data_ptr<float>());
      writer.AddF32(name + ".bias", {biases_[i].size(0)}, biases_[i].data_ptr<float>());
    }
    writer.SetMetadata("format", "pt");
    return writer;
  }

  std::string Fingerprint() const override { return ChecksumHex(Xxh3(Weights().Serialize())); }

  absl::Status Save(const std::string& dir, const TrainRecipe& recipe) const override {
    RETURN_IF_ERROR(MakeDirectories(dir));
    RETURN_IF_ERROR(Weights().WriteAtomically(dir + "/model.safetensors"));
    return WriteFileAtomically(dir + "/config.json", ModelConfigToJson(config_, recipe));
  }

  absl::Status LoadWeights(const SafetensorsFile& file) {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < weights_.size(); ++i) {
      const std::string& name = layout_.layers[i].name;
      ASSIGN_OR_RETURN(TensorView w, file.Get(name + ".weight", DType::kF32,
                                              {weights_[i].size(0), weights_[i].size(1)}));
      ASSIGN_OR_RETURN(TensorView b, file.Get(name + ".bias", DType::kF32, {biases_[i].size(0)}));
      std::memcpy(weights_[i].data_ptr<float>(), w.bytes.data(), w.bytes.size());
      std::memcpy(biases_[i].data_ptr<float>(), b.bytes.data(), b.bytes.size());
    }
    Eigen::VectorXf flat = Parameters();
    if (!flat.allFinite()) return absl::DataLossError(absl::StrCat(file.source(), ": weights hold NaN or Inf"));
    return absl::OkStatus();
  }

 private:
  ModelConfig config_;
  ParamLayout layout_;
  std::vector<torch::Tensor> weights_;
  std::vector<torch::Tensor> biases_;
};

}  // namespace

const char* CurvatureName(Curvature kind) {
  return kind == Curvature::kHessian ? "hessian" : "gauss-newton";
}

absl::StatusOr<Eigen::MatrixXd> Model::CurvatureProduct(const float*, const int32_t*, int64_t,
                                                        const Eigen::MatrixXd&, Curvature) const {
  return absl::UnimplementedError(
      absl::StrCat("model kind '", config().kind, "' has no curvature-vector products"));
}

absl::StatusOr<Eigen::VectorXd> Model::CurvatureVectorProduct(const float* inputs,
                                                              const int32_t* labels, int64_t rows,
                                                              const Eigen::VectorXd& v,
                                                              Curvature kind) const {
  ASSIGN_OR_RETURN(Eigen::MatrixXd out, CurvatureProduct(inputs, labels, rows, v, kind));
  return Eigen::VectorXd(out.col(0));
}

absl::StatusOr<std::unique_ptr<Model>> CreateModel(const ModelConfig& config, uint64_t seed) {
  RETURN_IF_ERROR(ValidateModelConfig(config));
  auto mlp = std::make_unique<Mlp>(config);
  mlp->Initialise(seed);
  return std::unique_ptr<Model>(std::move(mlp));
}

absl::StatusOr<std::unique_ptr<Model>> LoadModel(const std::string& dir, TrainRecipe* recipe) {
  std::string text;
  RETURN_IF_ERROR(ReadFile(dir + "/config.json", &text));
  ModelConfig config;
  TrainRecipe ignored;
  RETURN_IF_ERROR(ModelConfigFromJson(text, dir + "/config.json", &config, recipe ? recipe : &ignored));
  ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> weights,
                   SafetensorsFile::Read(dir + "/model.safetensors"));
  auto mlp = std::make_unique<Mlp>(config);
  RETURN_IF_ERROR(mlp->LoadWeights(*weights));
  return std::unique_ptr<Model>(std::move(mlp));
}

void InitComputeThreads(int threads) {
  if (threads <= 0) {
    const char* env = std::getenv("OMP_NUM_THREADS");
    threads = env != nullptr ? std::atoi(env) : 0;
  }
  if (threads <= 0) threads = static_cast<int>(std::thread::hardware_concurrency());
  if (threads <= 0) threads = 1;
  torch::set_num_threads(threads);
}

}  // namespace tda
