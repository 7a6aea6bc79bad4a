// Internal to src/model: weight matrices kept as bfloat16 in memory (imported bf16 checkpoints),
// computed with in float32.
//
// Why upcast instead of computing in bf16: Debian's LibTorch 1.13 has no fast bf16 GEMM for
// CPUs without AVX512-BF16/AMX (this one: AVX2 only). Measured at TinyLlama's shapes on the
// 2-core dev box (512 x 2048 by 2048 x 5632): f32 matmul 124 GFLOP/s, bf16 matmul 1.3 GFLOP/s.
// So the weights are stored bf16 (half the bytes) and each Linear widens its own weight to f32
// for its matmul: a transient copy of one layer's weight, freed when the matmul returns.
// Activations, output gradients, captures and projections stay float32, and because bf16 -> f32
// is exact, a bf16-resident model computes the same numbers as the same checkpoint widened to
// float32 on load (the tests check it bit for bit).
//
// Autograd must not keep the widened copies (a plain matmul would save its f32 operand for the
// backward pass: the whole model in f32 again), so UpcastLinear is its own autograd function:
// it saves the bf16 weight and widens it again in the backward pass.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "common/safetensors.h"

namespace tda {

// `t` as float32 when it is bfloat16 (a copy), else `t` itself.
torch::Tensor AsCompute(const torch::Tensor& t);
// The dtype AsCompute(t) has.
torch::Dtype ComputeDType(const torch::Tensor& t);

// x W^T for a bfloat16 W (out x in) and a float32 x (... x in), in float32; differentiable in x
// and, when W requires grad, in W (its gradient computed in f32, stored bf16).
torch::Tensor UpcastLinear(const torch::Tensor& x, const torch::Tensor& w);

// How a decoder holds its weight matrices when loaded from tensors stored as `matrix_dtypes`
// (the dtypes of every 2-D tensor of a checkpoint): bfloat16 when all are BF16, else float32
// (F16 and F32 are widened; a mixed checkpoint is widened whole).
torch::Dtype ResidentMatrixDType(const std::vector<DType>& matrix_dtypes);

// Adds the contiguous float32 or bfloat16 `value` to `writer` as F32 or BF16.
void AddTensor(SafetensorsWriter* writer, const std::string& name, const torch::Tensor& value);

}  // namespace tda
