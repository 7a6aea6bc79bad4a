// tda import --hf DIR --out MODEL: a Hugging Face model directory (Llama family or GPT-2) as a
// tda model directory (hf_checkpoint.h).
#include <iostream>

#include "absl/strings/str_format.h"
#include "client/commands.h"
#include "common/flags.h"
#include "model/hf_checkpoint.h"

namespace tda {

int RunImport(const Args& args) {
  FlagParser flags("tda import", "--hf DIR --out MODEL",
                   "Reads a Hugging Face model directory (config.json; model.safetensors or\n"
                   "model.safetensors.index.json and its shards; F32, BF16 or F16 weights) of a\n"
                   "llama, mistral, qwen2 or gpt2 model and writes it as a tda model directory\n"
                   "(config.json with the architecture; weight matrices kept bf16, on disk and in\n"
                   "memory, when all of DIR's are BF16, else float32); tokenizer files found in\n"
                   "DIR are copied beside it. Every tensor name and shape is checked first, and a\n"
                   "checkpoint larger than the available memory is refused before it is read.");
  flags.AddRequiredString("hf", "DIR", "Hugging Face model directory");
  flags.AddRequiredString("out", "MODEL",
                          "tda model directory to write (must not exist or be empty)");
  flags.AddInt("threads", "N", 0, "compute threads (0 = OMP_NUM_THREADS or all cores)");
  if (std::optional<int> exit = flags.ParseOrExit(args)) return *exit;
  if (flags.GetInt("threads") < 0) return flags.UsageError("--threads must be >= 0");
  InitCompute(static_cast<int>(flags.GetInt("threads")));
  absl::StatusOr<std::unique_ptr<Model>> model =
      ImportHfCheckpoint(flags.GetString("hf"), flags.GetString("out"));
  if (!model.ok()) return RuntimeError(model.status());
  const ModelConfig& c = (*model)->config();
  std::cout << absl::StrFormat(
      "imported a %s model (%d layers, width %d, %d heads, vocabulary %d, context %d, %s head; "
      "%d tracked parameters; weight matrices held as %s) into %s\n",
      c.kind == "gpt" ? "gpt2" : c.hf_model_type, c.layers, c.d_model, c.heads, c.num_classes,
      c.context_length, c.tied_head ? "tied" : "untied", (*model)->layout().total(),
      HeldMatrixDType(**model), flags.GetString("out"));
  return 0;
}

}  // namespace tda
