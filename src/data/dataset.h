// A data set as tda sees it: N samples, each with a stable id, a data source, a class label
// and a dense feature vector. Torch-free; models convert features to tensors themselves.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tda {

struct Dataset {
  std::string name;                      // e.g. "fashion-mnist/train"
  int64_t feature_dim = 0;               // 784 for Fashion-MNIST
  std::vector<float> features;           // size() x feature_dim, row-major
  std::vector<int32_t> labels;           // class index per sample
  std::vector<std::string> ids;          // stable id per sample, e.g. "fashion-mnist/train/17"
  std::vector<std::string> sources;      // data source per sample
  std::vector<std::string> class_names;  // label -> human name

  int64_t size() const { return static_cast<int64_t>(labels.size()); }
  const float* row(int64_t i) const { return features.data() + i * feature_dim; }
};

}  // namespace tda
