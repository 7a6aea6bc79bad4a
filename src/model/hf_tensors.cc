#include "model/hf_tensors.h"

#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace tda {
namespace {

constexpr const char* kConv1dWeights[] = {".attn.c_attn.weight", ".attn.c_proj.weight",
                                          ".mlp.c_fc.weight", ".mlp.c_proj.weight"};

std::string ShapeText(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

}  // namespace

std::vector<HfTensor> HfTensorsOf(const DecoderModel& model, const std::string& gpt2_prefix) {
  const bool gpt2 = model.config().kind == "gpt";
  std::vector<HfTensor> out;
  for (const DecoderModel::NamedShape& param : model.ParameterShapes()) {
    HfTensor t{param.name, param.name, param.shape, false};
    if (gpt2) {
      if (param.name != "lm_head.weight") t.hf_name = gpt2_prefix + param.name;
      for (const char* suffix : kConv1dWeights) {
        if (absl::EndsWith(param.name, suffix)) t.transposed = true;
      }
      if (t.transposed) t.hf_shape = {param.shape[1], param.shape[0]};
    }
    out.push_back(std::move(t));
  }
  return out;
}

bool IsIgnoredHfBuffer(const std::string& name) {
  return absl::EndsWith(name, ".attn.bias") || absl::EndsWith(name, ".attn.masked_bias") ||
         absl::EndsWith(name, ".rotary_emb.inv_freq");
}

absl::Status CheckHfTensors(const std::vector<HfTensor>& expected,
                            const std::map<std::string, TensorInfo>& stored,
                            const std::string& source) {
  std::vector<std::string> missing, unexpected, mismatched;
  std::set<std::string> wanted;
  for (const HfTensor& t : expected) {
    wanted.insert(t.hf_name);
    auto it = stored.find(t.hf_name);
    if (it == stored.end()) {
      missing.push_back(absl::StrCat(t.hf_name, " ", ShapeText(t.hf_shape)));
      continue;
    }
    const TensorInfo& info = it->second;
    if (info.shape != t.hf_shape) {
      mismatched.push_back(absl::StrCat(t.hf_name, " is ", ShapeText(info.shape),
                                        " in the checkpoint, the config needs ",
                                        ShapeText(t.hf_shape)));
    } else if (info.dtype != DType::kF32 && info.dtype != DType::kBF16 &&
               info.dtype != DType::kF16) {
      mismatched.push_back(absl::StrCat(t.hf_name, " is ", DTypeName(info.dtype),
                                        "; only F32, BF16 and F16 are read"));
    }
  }
  for (const auto& [name, info] : stored) {
    if (wanted.count(name) == 0 && !IsIgnoredHfBuffer(name)) {
      unexpected.push_back(absl::StrCat(name, " ", ShapeText(info.shape)));
    }
  }
  if (missing.empty() && unexpected.empty() && mismatched.empty()) return absl::OkStatus();
  std::string message = absl::StrCat(source, ": the checkpoint does not match its config");
  if (!missing.empty()) {
    absl::StrAppend(&message, "; missing ", missing.size(), ": ", absl::StrJoin(missing, ", "));
  }
  if (!unexpected.empty()) {
    absl::StrAppend(&message, "; unexpected ", unexpected.size(), ": ",
                    absl::StrJoin(unexpected, ", "));
  }
  if (!mismatched.empty()) {
    absl::StrAppend(&message, "; mis-shaped ", mismatched.size(), ": ",
                    absl::StrJoin(mismatched, ", "));
  }
  return absl::InvalidArgumentError(message);
}

}  // namespace tda
