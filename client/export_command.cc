// tda export-hf MODEL --out DIR: a tda gpt or llama model as a Hugging Face model directory
// (hf_export.h).
#include <iostream>

#include "client/commands.h"
#include "common/flags.h"
#include "model/hf_export.h"

namespace tda {

int RunExportHf(const Args& args) {
  FlagParser flags("tda export-hf", "MODEL --out DIR",
                   "Writes the tda gpt or llama model MODEL as a Hugging Face model directory:\n"
                   "config.json (model_type gpt2, llama, mistral or qwen2) and model.safetensors\n"
                   "(float32, Hugging Face tensor names). DIR must not exist, be empty, or hold\n"
                   "an earlier export, which is replaced.");
  flags.AddRequiredString("model", "MODEL", "tda model directory (also the first argument)");
  flags.AddRequiredString("out", "DIR", "Hugging Face directory to write");
  Args named = args;
  if (!named.empty() && !named[0].empty() && named[0][0] != '-') {
    named.insert(named.begin(), "--model");
  }
  if (std::optional<int> exit = flags.ParseOrExit(named)) return *exit;
  InitCompute(1);
  absl::StatusOr<std::unique_ptr<Model>> model = LoadModel(flags.GetString("model"));
  if (!model.ok()) return RuntimeError(model.status());
  if (absl::Status s = ExportHfCheckpoint(**model, flags.GetString("out")); !s.ok()) {
    return RuntimeError(s);
  }
  std::cout << "exported " << flags.GetString("model") << " to " << flags.GetString("out") << "\n";
  return 0;
}

}  // namespace tda
