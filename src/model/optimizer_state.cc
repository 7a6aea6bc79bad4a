#include "model/optimizer_state.h"

#include <cmath>
#include <cstring>
#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/checksum.h"
#include "common/safetensors.h"
#include "common/status_macros.h"

namespace tda {
namespace {

std::string TensorName(const TrackedLayer& layer) { return layer.name + ".exp_avg_sq"; }

absl::Status CheckValues(const Eigen::VectorXf& v, const std::string& what) {
  for (Eigen::Index i = 0; i < v.size(); ++i) {
    if (!std::isfinite(v[i]) || v[i] < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": exp_avg_sq[", i, "] = ", v[i], " is not a finite value >= 0"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Metadata(const SafetensorsFile& file, const std::string& key) {
  auto it = file.metadata().find(key);
  if (it == file.metadata().end()) {
    return absl::DataLossError(absl::StrCat(file.source(), ": metadata has no '", key, "'"));
  }
  return it->second;
}

}  // namespace

Eigen::VectorXd OptimizerState::BiasCorrected() const {
  const double correction = 1.0 - std::pow(beta2, static_cast<double>(step));
  return exp_avg_sq.cast<double>() / correction;
}

absl::Status SaveOptimizerState(const std::string& model_dir, const Model& model,
                                const OptimizerState& state) {
  const ParamLayout& layout = model.layout();
  if (state.exp_avg_sq.size() != layout.total()) {
    return absl::InvalidArgumentError(absl::StrCat("optimizer state has ", state.exp_avg_sq.size(),
                                                   " entries, the model ", layout.total()));
  }
  if (state.step <= 0 || !(state.beta2 > 0 && state.beta2 < 1) || !(state.eps >= 0)) {
    return absl::InvalidArgumentError(absl::StrCat("optimizer state: step ", state.step, ", beta2 ",
                                                   state.beta2, ", eps ", state.eps,
                                                   " (need step > 0, 0 < beta2 < 1, eps >= 0)"));
  }
  RETURN_IF_ERROR(CheckValues(state.exp_avg_sq, "optimizer state"));
  SafetensorsWriter writer;
  for (const TrackedLayer& layer : layout.layers) {
    writer.AddF32(TensorName(layer), {layer.out, layer.cols()},
                  state.exp_avg_sq.data() + layer.offset);
  }
  writer.SetMetadata("optimizer", state.optimizer);
  writer.SetMetadata("step", absl::StrCat(state.step));
  writer.SetMetadata("beta2", absl::StrFormat("%.17g", state.beta2));
  writer.SetMetadata("eps", absl::StrFormat("%.17g", state.eps));
  writer.SetMetadata("model_fingerprint", model.Fingerprint());
  writer.SetMetadata("exp_avg_sq_xxh3",
                     ChecksumHex(Xxh3(state.exp_avg_sq.data(),
                                      sizeof(float) * static_cast<size_t>(layout.total()))));
  return writer.WriteAtomically(model_dir + "/" + kOptimizerStateFile);
}

absl::Status RemoveOptimizerState(const std::string& model_dir) {
  const std::string path = model_dir + "/" + kOptimizerStateFile;
  std::error_code ec;
  std::filesystem::remove(path, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot remove ", path, ": ", ec.message()));
  return absl::OkStatus();
}

absl::StatusOr<OptimizerState> LoadOptimizerState(const std::string& model_dir,
                                                  const Model& model) {
  const ParamLayout& layout = model.layout();
  const std::string path = model_dir + "/" + kOptimizerStateFile;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the model in ", model_dir, " has no optimizer state (", kOptimizerStateFile,
        "): it was trained with SGD or saved before tda kept Adam's second moment. Retrain it "
        "with --optimizer adam or adamw (tda train / tda gpt train) to use the Adam correction"));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file, SafetensorsFile::Read(path));
  OptimizerState state;
  ASSIGN_OR_RETURN(state.optimizer, Metadata(*file, "optimizer"));
  ASSIGN_OR_RETURN(const std::string step, Metadata(*file, "step"));
  ASSIGN_OR_RETURN(const std::string beta2, Metadata(*file, "beta2"));
  ASSIGN_OR_RETURN(const std::string eps, Metadata(*file, "eps"));
  ASSIGN_OR_RETURN(const std::string checksum, Metadata(*file, "exp_avg_sq_xxh3"));
  ASSIGN_OR_RETURN(const std::string fingerprint, Metadata(*file, "model_fingerprint"));
  if (fingerprint != model.Fingerprint()) {
    return absl::DataLossError(absl::StrCat(
        path, ": belongs to weights ", fingerprint, ", the model's are ", model.Fingerprint(),
        " (the weights were replaced after training); retrain to get a matching state"));
  }
  if (!absl::SimpleAtoi(step, &state.step) || !absl::SimpleAtod(beta2, &state.beta2) ||
      !absl::SimpleAtod(eps, &state.eps) || state.step <= 0 ||
      !(state.beta2 > 0 && state.beta2 < 1) || !(state.eps >= 0)) {
    return absl::DataLossError(absl::StrCat(path, ": step '", step, "', beta2 '", beta2, "', eps '",
                                            eps, "' are not a valid Adam state"));
  }
  state.exp_avg_sq.resize(layout.total());
  for (const TrackedLayer& layer : layout.layers) {
    absl::StatusOr<TensorView> view =
        file->Get(TensorName(layer), DType::kF32, {layer.out, layer.cols()});
    if (!view.ok()) {
      return absl::DataLossError(absl::StrCat(view.status().message(),
                                              " (does the optimizer state belong to this model?)"));
    }
    std::memcpy(state.exp_avg_sq.data() + layer.offset, view->bytes.data(), view->bytes.size());
  }
  const std::string actual = ChecksumHex(
      Xxh3(state.exp_avg_sq.data(), sizeof(float) * static_cast<size_t>(layout.total())));
  if (actual != checksum) {
    return absl::DataLossError(
        absl::StrCat(path, ": checksum 0x", actual, " != recorded 0x", checksum, " (corrupted?)"));
  }
  absl::Status values = CheckValues(state.exp_avg_sq, path);
  if (!values.ok()) return absl::DataLossError(values.message());
  return state;
}

}  // namespace tda
