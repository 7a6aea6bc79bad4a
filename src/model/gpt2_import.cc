#include "model/gpt2_import.h"

#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/safetensors.h"
#include "common/status_macros.h"
#include "model/hf_checkpoint.h"

namespace tda {

absl::StatusOr<std::unique_ptr<Model>> ImportGpt2(const std::string& path, int64_t heads) {
  ASSIGN_OR_RETURN(auto table, ReadSafetensorsTable(path));
  const std::string prefix = table.count("transformer.wte.weight") ? "transformer." : "";
  auto shape = [&](const std::string& name) -> absl::StatusOr<std::vector<int64_t>> {
    auto it = table.find(prefix + name);
    if (it == table.end()) {
      return absl::NotFoundError(absl::StrCat("tensor '", prefix, name, "' not found in ", path));
    }
    if (it->second.shape.size() != 2) {
      return absl::DataLossError(absl::StrCat(path, ": ", prefix, name, " is not a matrix"));
    }
    return it->second.shape;
  };
  ASSIGN_OR_RETURN(std::vector<int64_t> wte, shape("wte.weight"));
  ASSIGN_OR_RETURN(std::vector<int64_t> wpe, shape("wpe.weight"));
  if (wte[1] != wpe[1]) {
    return absl::DataLossError(absl::StrCat(path, ": wte and wpe must be matrices of one width"));
  }
  int64_t layers = 0;
  while (table.count(absl::StrCat(prefix, "h.", layers, ".attn.c_attn.weight"))) ++layers;
  if (layers == 0) return absl::DataLossError(absl::StrCat(path, ": no h.0.attn.c_attn.weight"));
  ASSIGN_OR_RETURN(std::vector<int64_t> fc, shape("h.0.mlp.c_fc.weight"));  // Conv1D: in x out
  ModelConfig config = GptConfig(wpe[0], wte[1], layers, heads, fc[1],
                                 /*tied_head=*/table.count("lm_head.weight") == 0);
  config.num_classes = wte[0];
  RETURN_IF_ERROR(ValidateModelConfig(config));
  return LoadHfWeights(config, {path}, path);
}

}  // namespace tda
