#include "model/gpt2_import.h"

#include <torch/torch.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/safetensors.h"
#include "common/status_macros.h"
#include "model/torch_model.h"

namespace tda {
namespace {

// Conv1D weights (in x out in the Hugging Face file) of one block, by name suffix.
constexpr const char* kConv1dWeights[] = {"attn.c_attn.weight", "attn.c_proj.weight",
                                          "mlp.c_fc.weight", "mlp.c_proj.weight"};

}  // namespace

absl::StatusOr<std::unique_ptr<Model>> ImportGpt2(const std::string& path, int64_t heads) {
  ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file, SafetensorsFile::Read(path));
  const std::string prefix = file->Has("transformer.wte.weight") ? "transformer." : "";
  auto get = [&](const std::string& name) -> absl::StatusOr<TensorView> {
    ASSIGN_OR_RETURN(TensorView view, file->Get(prefix + name));
    if (view.dtype != DType::kF32) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": ", prefix, name, " is ",
                                                     DTypeName(view.dtype), "; only F32 is read"));
    }
    return view;
  };
  ASSIGN_OR_RETURN(TensorView wte, get("wte.weight"));
  ASSIGN_OR_RETURN(TensorView wpe, get("wpe.weight"));
  if (wte.shape.size() != 2 || wpe.shape.size() != 2 || wte.shape[1] != wpe.shape[1]) {
    return absl::DataLossError(absl::StrCat(path, ": wte and wpe must be matrices of one width"));
  }
  int64_t layers = 0;
  while (file->Has(absl::StrCat(prefix, "h.", layers, ".attn.c_attn.weight"))) ++layers;
  if (layers == 0) return absl::DataLossError(absl::StrCat(path, ": no h.0.attn.c_attn.weight"));
  ASSIGN_OR_RETURN(TensorView fc, get("h.0.mlp.c_fc.weight"));
  if (fc.shape.size() != 2)
    return absl::DataLossError(absl::StrCat(path, ": c_fc is not a matrix"));
  const bool untied = file->Has("lm_head.weight");
  ModelConfig config = GptConfig(wpe.shape[0], wte.shape[1], layers, heads, fc.shape[1], !untied);
  config.num_classes = wte.shape[0];
  RETURN_IF_ERROR(ValidateModelConfig(config));

  // Rewrite into tda's names and layout, then load like a saved model (which checks shapes).
  SafetensorsWriter native;
  auto copy = [&](const std::string& name, bool transpose) -> absl::Status {
    ASSIGN_OR_RETURN(TensorView view, name == "lm_head.weight" ? file->Get(name) : get(name));
    torch::Tensor t =
        torch::from_blob(const_cast<char*>(view.bytes.data()), view.shape, torch::kFloat32);
    if (transpose) {
      if (view.shape.size() != 2) {
        return absl::DataLossError(absl::StrCat(path, ": ", name, " is not a matrix"));
      }
      t = t.t();
    }
    t = t.contiguous();
    native.AddF32(name, t.sizes().vec(), t.data_ptr<float>());
    return absl::OkStatus();
  };
  for (const char* name : {"wte.weight", "wpe.weight", "ln_f.weight", "ln_f.bias"}) {
    RETURN_IF_ERROR(copy(name, false));
  }
  if (untied) RETURN_IF_ERROR(copy("lm_head.weight", false));
  for (int64_t l = 0; l < layers; ++l) {
    const std::string p = absl::StrCat("h.", l, ".");
    for (const char* name :
         {"ln_1.weight", "ln_1.bias", "ln_2.weight", "ln_2.bias", "attn.c_attn.bias",
          "attn.c_proj.bias", "mlp.c_fc.bias", "mlp.c_proj.bias"}) {
      RETURN_IF_ERROR(copy(p + name, false));
    }
    for (const char* name : kConv1dWeights) RETURN_IF_ERROR(copy(p + name, true));
  }
  return CatchTorchErrors("import gpt2", [&]() -> absl::StatusOr<std::unique_ptr<Model>> {
    ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> parsed,
                     SafetensorsFile::Parse(native.Serialize(), path + " (converted)"));
    ASSIGN_OR_RETURN(std::unique_ptr<TorchModel> model, LoadGpt(config, *parsed));
    return std::unique_ptr<Model>(std::move(model));
  });
}

}  // namespace tda
