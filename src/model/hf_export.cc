#include "model/hf_export.h"

#include <filesystem>
#include <map>

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "common/safetensors.h"
#include "common/status_macros.h"
#include "model/bf16_weights.h"
#include "model/decoder_model.h"
#include "model/hf_config.h"
#include "model/hf_tensors.h"

namespace tda {
namespace {

namespace fs = std::filesystem;

constexpr char kMarker[] = ".tda-export";

absl::Status WriteExport(const DecoderModel& model, const std::string& dir) {
  RETURN_IF_ERROR(MakeDirectories(dir));
  std::map<std::string, torch::Tensor> values;
  for (auto& [name, value] : model.NamedParameters()) values[name] = value;
  SafetensorsWriter writer;
  for (const HfTensor& t : HfTensorsOf(model, "")) {
    torch::Tensor value = values.at(t.tda_name);
    if (t.transposed) value = value.t();
    AddTensor(&writer, t.hf_name, value.contiguous());
  }
  writer.SetMetadata("format", "pt");
  RETURN_IF_ERROR(writer.WriteAtomically(dir + "/model.safetensors"));
  RETURN_IF_ERROR(WriteFileAtomically(dir + "/config.json", HfJsonFromModelConfig(model.config())));
  return WriteFileAtomically(dir + "/" + kMarker, "written by tda export-hf\n");
}

}  // namespace

absl::Status ExportHfCheckpoint(const Model& model, const std::string& out) {
  const auto* decoder = dynamic_cast<const DecoderModel*>(&model);
  if (decoder == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("a ", model.config().kind,
                                                   " model has no Hugging Face form; only gpt "
                                                   "and llama models are exported"));
  }
  const ModelConfig& config = model.config();
  const bool llama_biases = config.qkv_bias == config.o_bias;  // attention_bias: all or none
  const bool qwen2_biases = config.qkv_bias && !config.o_bias;
  const bool mistral_biases = !config.qkv_bias && !config.o_bias;
  if (config.kind == "llama" && !(config.hf_model_type == "llama"   ? llama_biases
                                  : config.hf_model_type == "qwen2" ? qwen2_biases
                                                                    : mistral_biases)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a ", config.hf_model_type, " config cannot express q/k/v biases ",
        config.qkv_bias ? "on" : "off", " with the output bias ", config.o_bias ? "on" : "off"));
  }
  std::error_code error;
  if (fs::exists(out) && !fs::is_empty(out, error) && !fs::exists(fs::path(out) / kMarker)) {
    return absl::AlreadyExistsError(
        absl::StrCat(out, " exists, is not empty and was not written by tda export-hf"));
  }
  const std::string staging = out + ".tda-export-tmp";
  fs::remove_all(staging, error);
  absl::Status written = CatchTorchErrors("export", [&] { return WriteExport(*decoder, staging); });
  if (written.ok()) {
    fs::remove_all(out, error);
    fs::rename(staging, out, error);
    if (error) {
      written = absl::InternalError(
          absl::StrCat("renaming ", staging, " to ", out, ": ", error.message()));
    }
  }
  if (!written.ok()) fs::remove_all(staging, error);
  return written;
}

}  // namespace tda
