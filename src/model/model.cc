// Architecture-independent parts of Model: creation and loading by kind, data checks, the
// default curvature product, compute threads.
#include <cblas.h>  // OpenBLAS's: openblas_set_num_threads
#include <malloc.h>
#include <torch/torch.h>

#include <cstdlib>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "common/status_macros.h"
#include "model/decoder_model.h"
#include "model/torch_model.h"

namespace tda {

const char* CurvatureName(Curvature kind) {
  return kind == Curvature::kHessian ? "hessian" : "gauss-newton";
}

absl::StatusOr<Eigen::MatrixXd> Model::CurvatureProduct(const Batch&, const Eigen::MatrixXd&,
                                                        Curvature) const {
  return absl::UnimplementedError(
      absl::StrCat("model kind '", config().kind, "' has no curvature-vector products"));
}

absl::StatusOr<Eigen::VectorXd> Model::CurvatureVectorProduct(const Batch& batch,
                                                              const Eigen::VectorXd& v,
                                                              Curvature kind) const {
  ASSIGN_OR_RETURN(Eigen::MatrixXd out, CurvatureProduct(batch, v, kind));
  return Eigen::VectorXd(out.col(0));
}

Eigen::MatrixXd CurvatureVectorProducts(const ParamLayout& layout,
                                        const std::vector<torch::Tensor>& params,
                                        const torch::Tensor& logits, const torch::Tensor& mean_loss,
                                        const torch::Tensor& output_weight, Curvature kind,
                                        const Eigen::MatrixXd& vectors) {
  Eigen::MatrixXd out(vectors.rows(), vectors.cols());
  // sum over parameters of a[k] . v[k], v = the flat vector split by layer.
  auto dot = [&](const std::vector<torch::Tensor>& a, const double* flat) {
    std::vector<torch::Tensor> v = SplitFlat(layout, flat);
    torch::Tensor sum = torch::zeros({}, torch::kFloat64);
    for (size_t k = 0; k < a.size(); ++k) sum = sum + (a[k] * v[k]).sum();
    return sum;
  };
  if (kind == Curvature::kHessian) {
    std::vector<torch::Tensor> grads = torch::autograd::grad({mean_loss}, params, {},
                                                             /*retain_graph=*/true,
                                                             /*create_graph=*/true);
    for (Eigen::Index c = 0; c < vectors.cols(); ++c) {
      std::vector<torch::Tensor> hv = torch::autograd::grad(
          {dot(grads, vectors.col(c).data())}, params, {}, /*retain_graph=*/true,
          /*create_graph=*/false, /*allow_unused=*/true);
      JoinFlat(layout, hv, out.col(c).data());
    }
    return out;
  }
  // J v by the double-backward trick: jtu = J^T u is linear in a dummy output gradient u, so
  // d(jtu . v)/du = J v.
  torch::Tensor u = torch::zeros_like(logits).set_requires_grad(true);
  std::vector<torch::Tensor> jtu =
      torch::autograd::grad({logits}, params, {u}, /*retain_graph=*/true, /*create_graph=*/true);
  const torch::Tensor probs = torch::softmax(logits.detach(), -1);
  for (Eigen::Index c = 0; c < vectors.cols(); ++c) {
    torch::Tensor jv = torch::autograd::grad({dot(jtu, vectors.col(c).data())}, {u}, {},
                                             /*retain_graph=*/true)[0];
    torch::Tensor hjv =
        (probs * jv - probs * (probs * jv).sum(-1, /*keepdim=*/true)) * output_weight;
    std::vector<torch::Tensor> jt =
        torch::autograd::grad({logits}, params, {hjv}, /*retain_graph=*/true);
    JoinFlat(layout, jt, out.col(c).data());
  }
  return out;
}

absl::Status CheckCurvatureVectors(const Eigen::MatrixXd& vectors, int64_t dim) {
  if (vectors.rows() != dim) {
    return absl::InvalidArgumentError(absl::StrCat("curvature product: vectors have ",
                                                   vectors.rows(), " rows, the model has ", dim,
                                                   " parameters"));
  }
  if (!vectors.allFinite()) {
    return absl::InvalidArgumentError("curvature product: vectors hold NaN or Inf");
  }
  return absl::OkStatus();
}

std::vector<torch::Tensor> SplitFlat(const ParamLayout& layout, const double* flat) {
  std::vector<torch::Tensor> out;
  for (const TrackedLayer& layer : layout.layers) {
    torch::Tensor block = torch::from_blob(const_cast<double*>(flat + layer.offset),
                                           {layer.out, layer.cols()}, torch::kFloat64);
    out.push_back(block.slice(1, 0, layer.in).clone());
    if (layer.has_bias) out.push_back(block.select(1, layer.in).clone());
  }
  return out;
}

void JoinFlat(const ParamLayout& layout, const std::vector<torch::Tensor>& parts, double* flat) {
  size_t next = 0;
  for (const TrackedLayer& layer : layout.layers) {
    Eigen::Map<RowMatrixXd> block(flat + layer.offset, layer.out, layer.cols());
    const torch::Tensor& w = parts[next++];
    if (w.defined()) {
      torch::Tensor wc = w.to(torch::kFloat64).contiguous();
      block.leftCols(layer.in) =
          Eigen::Map<const RowMatrixXd>(wc.data_ptr<double>(), layer.out, layer.in);
    } else {
      block.leftCols(layer.in).setZero();
    }
    if (!layer.has_bias) continue;
    const torch::Tensor& b = parts[next++];
    if (b.defined()) {
      torch::Tensor bc = b.to(torch::kFloat64).contiguous();
      block.col(layer.in) = Eigen::Map<const Eigen::VectorXd>(bc.data_ptr<double>(), layer.out);
    } else {
      block.col(layer.in).setZero();
    }
  }
}

absl::Status CheckDataFitsModel(const RowSource& data, const ModelConfig& config,
                                const std::string& what) {
  if (config.is_sequence()) {
    if (!data.is_sequence()) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": data set ", data.name(),
                                                     " holds feature vectors, the ", config.kind,
                                                     " model reads token sequences"));
    }
    if (data.sequence_length() > config.context_length) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": data set ", data.name(), " has sequences of ", data.sequence_length(),
                       " tokens, the model's context is ", config.context_length));
    }
    return absl::OkStatus();
  }
  if (data.is_sequence() || data.feature_dim() != config.input_dim) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": data set ", data.name(), " has ",
                                                   data.feature_dim(), " features, model expects ",
                                                   config.input_dim));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Model>> CreateModel(const ModelConfig& config, uint64_t seed) {
  RETURN_IF_ERROR(ValidateModelConfig(config));
  return CatchTorchErrors("create model", [&]() -> absl::StatusOr<std::unique_ptr<Model>> {
    if (config.kind == "llama") {
      std::unique_ptr<DecoderModel> llama = NewLlama(config, torch::kFloat32);
      llama->Initialise(seed);
      return std::unique_ptr<Model>(std::move(llama));
    }
    if (config.is_sequence()) return std::unique_ptr<Model>(CreateGpt(config, seed));
    return std::unique_ptr<Model>(CreateMlp(config, seed));
  });
}

absl::StatusOr<std::unique_ptr<Model>> LoadModel(const std::string& dir, TrainRecipe* recipe) {
  std::string text;
  RETURN_IF_ERROR(ReadFile(dir + "/config.json", &text));
  ModelConfig config;
  TrainRecipe ignored;
  RETURN_IF_ERROR(
      ModelConfigFromJson(text, dir + "/config.json", &config, recipe ? recipe : &ignored));
  RETURN_IF_ERROR(AttachModelTokenizer(dir, recipe ? recipe : &ignored));
  ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> weights,
                   SafetensorsFile::Read(dir + "/model.safetensors"));
  return CatchTorchErrors("load model", [&]() -> absl::StatusOr<std::unique_ptr<Model>> {
    if (config.is_sequence()) {
      ASSIGN_OR_RETURN(std::unique_ptr<DecoderModel> model, LoadDecoder(config, *weights));
      return std::unique_ptr<Model>(std::move(model));
    }
    ASSIGN_OR_RETURN(std::unique_ptr<TorchModel> model, LoadMlp(config, *weights));
    return std::unique_ptr<Model>(std::move(model));
  });
}

void InitCompute(int threads) {
  if (threads <= 0) {
    const char* env = std::getenv("OMP_NUM_THREADS");
    threads = env != nullptr ? std::atoi(env) : 0;
  }
  if (threads <= 0) threads = static_cast<int>(std::thread::hardware_concurrency());
  if (threads <= 0) threads = 1;
  torch::set_num_threads(threads);
  // OpenBLAS (LibTorch's BLAS here) then runs each call on its calling thread: its own threads
  // beside OpenMP's oversubscribed the cores (measured on 2 cores: GPT training 96 s vs 62 s,
  // a GPT index build 137 s vs 94 s).
  openblas_set_num_threads(1);
  // Tensors of up to 32 MiB (glibc's limit) come from the heap, and freed memory stays there
  // for the next batch (up to 1 GiB) instead of going back to the OS and being faulted in
  // again: GPT training 68 s vs 50 s, page faults 6.6M vs 1.8M.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

}  // namespace tda
