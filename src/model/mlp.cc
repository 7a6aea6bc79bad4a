// The `mlp` architecture: Linear layers (tracked) with ReLU/tanh between them.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <random>

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

  // Inverted dropout after every hidden activation (p = config.dropout): each unit is zeroed
  // with probability p and the survivors scaled by 1 / (1 - p), masks from a generator seeded
  // with `step_seed`. p = 0: exactly Logits.
  torch::Tensor TrainingLogits(const torch::Tensor& inputs, uint64_t step_seed) const override {
    if (config_.dropout == 0) return Logits(inputs);
    at::Generator generator = at::detail::createCPUGenerator(step_seed);
    const double keep = 1.0 - config_.dropout;
    torch::Tensor h = inputs;
    for (size_t i = 0; i < weights_.size(); ++i) {
      h = torch::addmm(biases_[i], h, weights_[i].t());
      if (i + 1 == weights_.size()) break;
      torch::Tensor mask = torch::empty_like(h).bernoulli_(keep, generator);
      h = Activation(h) * mask / keep;
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
  std::vector<torch::Tensor> TrackedParameters() override { return TrainableParameters(); }

  // Inputs (and, when `need_labels`, labels) of a classification batch.
  absl::Status CheckBatch(const Batch& batch, bool need_labels) const {
    if (batch.rows <= 0) return absl::InvalidArgumentError("empty batch");
    if (batch.is_sequence() || batch.features == nullptr) {
      return absl::InvalidArgumentError("the mlp takes feature vectors, not token sequences");
    }
    const int64_t n = batch.rows * config_.input_dim;
    for (int64_t i = 0; i < n; ++i) {
      if (!std::isfinite(batch.features[i])) {
        return absl::InvalidArgumentError(absl::StrCat("input ", i / config_.input_dim, " feature ",
                                                       i % config_.input_dim, " is not finite"));
      }
    }
    if (!need_labels) return absl::OkStatus();
    if (batch.labels == nullptr) return absl::InvalidArgumentError("the batch has no labels");
    for (int64_t i = 0; i < batch.rows; ++i) {
      if (batch.labels[i] < 0 || batch.labels[i] >= config_.num_classes) {
        return absl::InvalidArgumentError(absl::StrCat("label ", batch.labels[i], " of row ", i,
                                                       " is not in [0, ", config_.num_classes, ")"));
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<Eigen::MatrixXf> Predict(const Batch& batch) const override {
    RETURN_IF_ERROR(CheckBatch(batch, /*need_labels=*/false));
    return CatchTorchErrors("mlp forward", [&]() -> absl::StatusOr<Eigen::MatrixXf> {
      return PredictUnchecked(batch.features, batch.rows);
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

  absl::StatusOr<BatchCapture> Capture(const Batch& batch) const override {
    RETURN_IF_ERROR(CheckBatch(batch, /*need_labels=*/true));
    return CatchTorchErrors("mlp capture", [&]() -> absl::StatusOr<BatchCapture> {
      return CaptureUnchecked(batch.features, batch.labels, batch.rows, nullptr, nullptr);
    });
  }

  absl::StatusOr<BatchCapture> CaptureSampled(const Batch& batch, const LabelSampler& sample,
                                              BatchCapture* own) const override {
    RETURN_IF_ERROR(CheckBatch(batch, /*need_labels=*/true));
    return CatchTorchErrors("mlp capture", [&]() -> absl::StatusOr<BatchCapture> {
      return CaptureUnchecked(batch.features, batch.labels, batch.rows, &sample, own);
    });
  }

  // Capture of `labels` (sample null), or of the labels `sample` draws from the forward's
  // probabilities and, into `own`, the g of `labels` from the same forward (CaptureSampled).
  absl::StatusOr<BatchCapture> CaptureUnchecked(const float* inputs, const int32_t* labels,
                                                int64_t rows, const LabelSampler* sample,
                                                BatchCapture* own) const {
    std::vector<torch::Tensor> layer_inputs, layer_outputs;
    torch::Tensor h = ViewRows(inputs, rows, config_.input_dim);
    for (size_t i = 0; i < weights_.size(); ++i) {
      layer_inputs.push_back(h.detach());
      torch::Tensor s = torch::addmm(biases_[i], h, weights_[i].t());
      layer_outputs.push_back(s);
      h = i + 1 < weights_.size() ? Activation(s) : s;
    }
    auto loss_of = [&](const int32_t* target_labels) {
      const torch::Tensor target =
          torch::from_blob(const_cast<int32_t*>(target_labels), {rows}, torch::kInt32)
              .to(torch::kInt64);
      return torch::nn::functional::cross_entropy(
          h, target, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
    };
    // Gradients with respect to the layer outputs only: parameter .grad is never touched, so
    // concurrent captures on one model are safe.
    auto capture_of = [&](const torch::Tensor& losses, bool retain, bool with_inputs) {
      const std::vector<torch::Tensor> grads =
          torch::autograd::grad({losses.sum()}, layer_outputs, {}, retain);
      BatchCapture capture;
      capture.samples = rows;
      capture.positions = 1;
      capture.losses.assign(losses.data_ptr<float>(), losses.data_ptr<float>() + rows);
      for (size_t i = 0; i < weights_.size(); ++i) {
        const TrackedLayer& layer = layout_.layers[i];
        LayerCapture lc;
        if (with_inputs) {
          lc.a.resize(rows, layer.cols());
          lc.a.leftCols(layer.in) = Eigen::Map<const RowMatrixXf>(
              layer_inputs[i].contiguous().data_ptr<float>(), rows, layer.in);
          lc.a.col(layer.in).setOnes();
        }
        torch::Tensor g = grads[i].contiguous();
        lc.g = Eigen::Map<const RowMatrixXf>(g.data_ptr<float>(), rows, layer.out);
        capture.layers.push_back(std::move(lc));
      }
      return capture;
    };
    if (sample == nullptr) return capture_of(loss_of(labels), false, true);
    const torch::Tensor probs = torch::softmax(h.detach(), 1).contiguous();
    const Eigen::MatrixXf probabilities =
        Eigen::Map<const RowMatrixXf>(probs.data_ptr<float>(), rows, config_.num_classes);
    ASSIGN_OR_RETURN(std::vector<int32_t> sampled, (*sample)(probabilities, 1));
    if (static_cast<int64_t>(sampled.size()) != rows) {
      return absl::InternalError(absl::StrCat("label sampler returned ", sampled.size(),
                                              " labels for ", rows, " rows"));
    }
    for (int32_t label : sampled) {
      if (label < 0 || label >= config_.num_classes) {
        return absl::InternalError(absl::StrCat("label sampler returned label ", label));
      }
    }
    BatchCapture capture = capture_of(loss_of(sampled.data()), own != nullptr, true);
    if (own != nullptr) *own = capture_of(loss_of(labels), false, false);
    return capture;
  }

  absl::StatusOr<Eigen::MatrixXd> CurvatureProduct(const Batch& batch,
                                                   const Eigen::MatrixXd& vectors,
                                                   Curvature kind) const override {
    RETURN_IF_ERROR(CheckBatch(batch, /*need_labels=*/true));
    RETURN_IF_ERROR(CheckCurvatureVectors(vectors, layout_.total()));
    return CatchTorchErrors("mlp curvature product", [&]() -> absl::StatusOr<Eigen::MatrixXd> {
      return CurvatureProductUnchecked(batch.features, batch.labels, batch.rows, vectors, kind);
    });
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
    const torch::Tensor loss = torch::nn::functional::cross_entropy(h, target);  // mean
    return CurvatureVectorProducts(layout_, params, h, loss,
                                   torch::full({}, 1.0 / static_cast<double>(rows), torch::kFloat64),
                                   kind, vectors);
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

std::unique_ptr<TorchModel> CreateMlp(const ModelConfig& config, uint64_t seed) {
  auto mlp = std::make_unique<Mlp>(config);
  mlp->Initialise(seed);
  return mlp;
}

absl::StatusOr<std::unique_ptr<TorchModel>> LoadMlp(const ModelConfig& config,
                                                    const SafetensorsFile& weights) {
  auto mlp = std::make_unique<Mlp>(config);
  RETURN_IF_ERROR(mlp->LoadWeights(weights));
  return std::unique_ptr<TorchModel>(std::move(mlp));
}

}  // namespace tda
