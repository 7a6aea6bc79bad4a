#include "model/hf_checkpoint.h"

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/atomic_file.h"
#include "common/safetensors.h"
#include "common/status_macros.h"
#include "data/tokenizer_files.h"
#include "model/bf16_weights.h"
#include "model/decoder_model.h"
#include "model/hf_config.h"
#include "model/hf_tensors.h"

namespace tda {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// MemAvailable of /proc/meminfo in bytes.
absl::StatusOr<int64_t> MemAvailable() {
  std::string text;
  RETURN_IF_ERROR(ReadFile("/proc/meminfo", &text));
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::ConsumePrefix(&line, "MemAvailable:")) continue;
    std::vector<absl::string_view> parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
    int64_t kib = 0;
    if (!parts.empty() && absl::SimpleAtoi(parts[0], &kib)) return kib * 1024;
  }
  return absl::InternalError("/proc/meminfo has no MemAvailable line");
}

// The shard files of `dir`: model.safetensors, or those model.safetensors.index.json names.
absl::StatusOr<std::vector<std::string>> ShardFiles(const std::string& dir) {
  const std::string single = dir + "/model.safetensors";
  const std::string index_path = dir + "/model.safetensors.index.json";
  if (!fs::exists(index_path)) {
    if (!fs::exists(single)) {
      return absl::NotFoundError(absl::StrCat(dir,
                                              " has neither model.safetensors nor "
                                              "model.safetensors.index.json"));
    }
    return std::vector<std::string>{single};
  }
  std::string text;
  RETURN_IF_ERROR(ReadFile(index_path, &text));
  const json index = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (index.is_discarded() || !index.is_object() || !index.contains("weight_map") ||
      !index["weight_map"].is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(index_path, ": not a JSON object with a \"weight_map\" object"));
  }
  std::map<std::string, std::string> first_tensor;  // shard -> a tensor it holds
  for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
    if (!it.value().is_string() || it.value().get<std::string>().find('/') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(index_path, ": weight_map entry '", it.key(), "' is not a shard file name"));
    }
    first_tensor.emplace(it.value().get<std::string>(), it.key());
  }
  std::vector<std::string> files;
  for (const auto& [shard, tensor] : first_tensor) {
    const std::string path = dir + "/" + shard;
    if (!fs::exists(path)) {
      return absl::NotFoundError(absl::StrCat(index_path, " names shard ", shard, " (holding ",
                                              tensor, "), which does not exist"));
    }
    files.push_back(path);
  }
  return files;
}

// How the model will hold its matrices: ResidentMatrixDType of the stored 2-D parameters.
torch::Dtype MatrixDTypeOf(const std::map<std::string, TensorInfo>& stored) {
  std::vector<DType> matrix_dtypes;
  for (const auto& [name, info] : stored) {
    if (info.shape.size() == 2 && !IsIgnoredHfBuffer(name)) matrix_dtypes.push_back(info.dtype);
  }
  return ResidentMatrixDType(matrix_dtypes);
}

// What the load allocates: every shard read whole (the stored bytes) plus the model's
// parameters as held (matrices in `matrix_dtype`, vectors in float32). Tensors are copied
// straight from the shards into the parameters, without an intermediate copy.
absl::Status CheckFitsInMemory(const std::map<std::string, TensorInfo>& stored,
                               torch::Dtype matrix_dtype, const std::string& source,
                               const HfLoadOptions& options) {
  const bool bf16 = matrix_dtype == torch::kBFloat16;
  int64_t stored_bytes = 0, held_bytes = 0;
  for (const auto& [name, info] : stored) {
    stored_bytes += info.bytes();
    if (IsIgnoredHfBuffer(name)) continue;
    const int64_t held_size = bf16 && info.shape.size() == 2 ? 2 : 4;
    held_bytes += info.bytes() / static_cast<int64_t>(DTypeSize(info.dtype)) * held_size;
  }
  int64_t available = options.available_memory_bytes;
  if (available < 0) {
    ASSIGN_OR_RETURN(available, MemAvailable());
  }
  if (stored_bytes + held_bytes <= available) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      source, ": loading needs ", stored_bytes + held_bytes, " bytes (", stored_bytes,
      " bytes of tensors as stored + ", held_bytes, " held in memory, weight matrices as ",
      bf16 ? "bf16" : "float32", "), more than the ", available,
      " bytes of memory available (MemAvailable); free memory or use a machine with more"));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Model>> LoadHfWeights(const ModelConfig& config,
                                                     const std::vector<std::string>& files,
                                                     const std::string& source,
                                                     const HfLoadOptions& options) {
  RETURN_IF_ERROR(ValidateModelConfig(config));
  if (!config.is_sequence()) {
    return absl::InvalidArgumentError("only gpt and llama models load from Hugging Face weights");
  }
  std::map<std::string, TensorInfo> stored;
  for (const std::string& file : files) {
    ASSIGN_OR_RETURN(auto table, ReadSafetensorsTable(file));
    for (auto& [name, info] : table) {
      if (!stored.emplace(name, info).second) {
        return absl::InvalidArgumentError(
            absl::StrCat(source, ": tensor ", name, " is stored twice (again in ", file, ")"));
      }
    }
  }
  const torch::Dtype matrix_dtype = MatrixDTypeOf(stored);
  RETURN_IF_ERROR(CheckFitsInMemory(stored, matrix_dtype, source, options));
  return CatchTorchErrors(
      "load Hugging Face weights", [&]() -> absl::StatusOr<std::unique_ptr<Model>> {
        std::unique_ptr<DecoderModel> model = NewDecoder(config, matrix_dtype);
        const std::string prefix = stored.count("transformer.wte.weight") ? "transformer." : "";
        const std::vector<HfTensor> expected = HfTensorsOf(*model, prefix);
        RETURN_IF_ERROR(CheckHfTensors(expected, stored, source));
        std::vector<std::unique_ptr<SafetensorsFile>> shards;
        std::map<std::string, const SafetensorsFile*> holder;
        for (const std::string& file : files) {
          ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> shard, SafetensorsFile::Read(file));
          for (const std::string& name : shard->names()) holder[name] = shard.get();
          shards.push_back(std::move(shard));
        }
        std::map<std::string, const HfTensor*> by_tda_name;
        for (const HfTensor& t : expected) by_tda_name[t.tda_name] = &t;
        TensorLookup lookup = [&](const std::string& name) -> absl::StatusOr<torch::Tensor> {
          const HfTensor& t = *by_tda_name.at(name);
          const SafetensorsFile& file = *holder.at(t.hf_name);
          ASSIGN_OR_RETURN(TensorView view, file.Get(t.hf_name));
          ASSIGN_OR_RETURN(torch::Tensor value,
                           TensorFromView(view, absl::StrCat(file.source(), ": ", t.hf_name)));
          return t.transposed ? value.t().contiguous() : value;
        };
        RETURN_IF_ERROR(model->LoadParameters(lookup, source));
        return std::unique_ptr<Model>(std::move(model));
      });
}

std::string HeldMatrixDType(const Model& model) {
  const auto* decoder = dynamic_cast<const DecoderModel*>(&model);
  return decoder != nullptr && decoder->matrix_dtype() == torch::kBFloat16 ? "bf16" : "float32";
}

absl::StatusOr<std::unique_ptr<Model>> LoadHfCheckpoint(const std::string& dir,
                                                        const HfLoadOptions& options) {
  std::string text;
  RETURN_IF_ERROR(ReadFile(dir + "/config.json", &text));
  ASSIGN_OR_RETURN(ModelConfig config, ModelConfigFromHfJson(text, dir + "/config.json"));
  ASSIGN_OR_RETURN(std::vector<std::string> files, ShardFiles(dir));
  return LoadHfWeights(config, files, dir, options);
}

absl::StatusOr<std::unique_ptr<Model>> ImportHfCheckpoint(const std::string& dir,
                                                          const std::string& out,
                                                          const HfLoadOptions& options) {
  std::error_code error;
  if (fs::exists(out) && !fs::is_empty(out, error)) {
    return absl::AlreadyExistsError(absl::StrCat(out, " exists and is not empty"));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Model> model, LoadHfCheckpoint(dir, options));
  const std::string staging = out + ".tda-import-tmp";
  fs::remove_all(staging, error);
  absl::Status written = model->Save(staging, TrainRecipe{});
  for (const char* name : kTokenizerFileNames) {
    if (!written.ok()) break;
    if (!fs::exists(dir + "/" + name)) continue;
    if (!fs::copy_file(dir + "/" + name, staging + "/" + name, error)) {
      written = absl::InternalError(
          absl::StrCat("copying ", dir, "/", name, " to ", staging, ": ", error.message()));
    }
  }
  if (written.ok() && fs::exists(out)) fs::remove(out, error);  // empty (checked above)
  if (written.ok()) {
    fs::rename(staging, out, error);
    if (error) {
      written = absl::InternalError(
          absl::StrCat("renaming ", staging, " to ", out, ": ", error.message()));
    }
  }
  if (!written.ok()) {
    fs::remove_all(staging, error);
    return written;
  }
  return model;
}

}  // namespace tda
