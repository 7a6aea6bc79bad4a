#include "model/bf16_weights.h"

namespace tda {
namespace {

// bf16 is the high half of an IEEE float32: widening is a 16-bit shift, done over all cores
// (LibTorch's own conversion ran single-threaded here).
torch::Tensor Widen(const torch::Tensor& w) {
  const torch::Tensor src = w.contiguous();
  torch::Tensor out = torch::empty(src.sizes(), torch::kFloat32);
  const auto* in = reinterpret_cast<const uint16_t*>(src.data_ptr<at::BFloat16>());
  auto* to = reinterpret_cast<uint32_t*>(out.data_ptr<float>());
  at::parallel_for(0, src.numel(), 1 << 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) to[i] = static_cast<uint32_t>(in[i]) << 16;
  });
  return out;
}

class UpcastLinearFunction : public torch::autograd::Function<UpcastLinearFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& w) {
    ctx->save_for_backward({x, w});
    return torch::matmul(x, Widen(w).t());
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const torch::autograd::variable_list saved = ctx->get_saved_variables();
    const torch::Tensor& x = saved[0];
    const torch::Tensor& w = saved[1];
    const torch::Tensor& g = grads[0];
    torch::Tensor grad_x, grad_w;
    if (ctx->needs_input_grad(0)) grad_x = torch::matmul(g, Widen(w));
    if (ctx->needs_input_grad(1)) {
      grad_w = torch::matmul(g.reshape({-1, w.size(0)}).t(), x.reshape({-1, w.size(1)}))
                   .to(torch::kBFloat16);
    }
    return {grad_x, grad_w};
  }
};

}  // namespace

torch::Tensor AsCompute(const torch::Tensor& t) {
  return t.scalar_type() == torch::kBFloat16 ? t.to(torch::kFloat32) : t;
}

torch::Dtype ComputeDType(const torch::Tensor& t) {
  return t.scalar_type() == torch::kBFloat16 ? torch::kFloat32 : t.scalar_type();
}

torch::Tensor UpcastLinear(const torch::Tensor& x, const torch::Tensor& w) {
  return UpcastLinearFunction::apply(x, w);
}

torch::Dtype ResidentMatrixDType(const std::vector<DType>& matrix_dtypes) {
  if (matrix_dtypes.empty()) return torch::kFloat32;
  for (DType dtype : matrix_dtypes) {
    if (dtype != DType::kBF16) return torch::kFloat32;
  }
  return torch::kBFloat16;
}

void AddTensor(SafetensorsWriter* writer, const std::string& name, const torch::Tensor& value) {
  const bool bf16 = value.scalar_type() == torch::kBFloat16;
  writer->Add(name, bf16 ? DType::kBF16 : DType::kF32, value.sizes().vec(), value.data_ptr());
}

}  // namespace tda
