// The parameters that influence is computed over: the tracked layers of a model, in order.
// A tracked layer with `out` outputs and `in` inputs has the weight matrix [W | b] of shape
// out x (in + has_bias); the flat parameter/gradient vector of the model concatenates these
// matrices row-major, layer after layer. With that order, the gradient of one sample at one
// position is vec(g a^T) = g (x) a (Kronecker), which is what K-FAC/EK-FAC factor.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tda {

struct TrackedLayer {
  std::string name;   // parameter prefix, e.g. "layers.0"
  int64_t out = 0;    // output features (rows of [W | b])
  int64_t in = 0;     // input features, without the bias column
  bool has_bias = true;
  int64_t offset = 0; // start of this layer in the flat vector

  int64_t cols() const { return in + (has_bias ? 1 : 0); }  // columns of [W | b], = dim of a
  int64_t size() const { return out * cols(); }
};

struct ParamLayout {
  std::vector<TrackedLayer> layers;

  int64_t total() const { return layers.empty() ? 0 : layers.back().offset + layers.back().size(); }
  // Appends a layer at the end, computing its offset.
  void Add(std::string name, int64_t out, int64_t in, bool has_bias) {
    layers.push_back({std::move(name), out, in, has_bias, total()});
  }
};

}  // namespace tda
