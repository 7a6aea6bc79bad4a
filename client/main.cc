// tda: the command-line interface. Dispatches to the subcommands in commands.h.
#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "client/commands.h"

namespace tda {

int RuntimeError(const absl::Status& status) {
  std::cerr << "tda: error: " << status.message() << "\n";
  return 1;
}

}  // namespace tda

namespace {

constexpr char kUsage[] =
    "Usage: tda <command> [flags]\n"
    "\n"
    "Training-data attribution with influence functions (EK-FAC).\n"
    "\n"
    "Commands:\n"
    "  train         train a Fashion-MNIST MLP (--model-kind gpt: a byte-level GPT on fortunes)\n"
    "  generate      sample a completion from a gpt or llama model (its own tokenizer)\n"
    "  import-gpt2   convert a GPT-2-named safetensors file into a gpt model\n"
    "  import        a Hugging Face model directory (llama, mistral, qwen2, gpt2) as a tda model\n"
    "  export-hf     a tda gpt or llama model as a Hugging Face model directory\n"
    "  index build   fit curvature factors and write the gradient index of a model\n"
    "  index verify  check every file of an index against its manifest checksums\n"
    "  index delete  mark training samples deleted (tombstones)\n"
    "  index append  add rows for new samples without rebuilding\n"
    "  index split   cut an index into shards for tda-server --router\n"
    "  index self-influence  the training samples the model memorised most\n"
    "  index ann     an approximate (FAISS) top-k index beside the rows ('query --approximate')\n"
    "  query         top proponents and opponents of query images (server or offline)\n"
    "  describe      what an index holds (server or offline)\n"
    "  health        is a tda-server serving? (the gRPC health check; for probes)\n"
    "  eval loo|lds  how faithful each method is: leave-one-out and LDS retraining\n"
    "  jobs          background jobs and schedules on a tda-server (submit, watch, ...)\n"
    "  data          export the fortunes as JSONL; check a JSONL corpus\n"
    "  admin         bearer tokens of a team tda-server (token create/revoke/list, reload)\n"
    "  ablate        remove samples or a data source: predicted vs unlearned vs retrained\n"
    "                ('tda ablate matrix': the source x task map); runs as a server job\n"
    "\n"
    "Run 'tda <command> --help' for the flags of a command.\n";

int Usage(const std::string& error) {
  std::cerr << "tda: error: " << error << "\n\n" << kUsage;
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) return Usage("no command given");
  const std::string command = args[0];
  args.erase(args.begin());
  if (command == "--help" || command == "-h" || command == "help") {
    std::cout << kUsage;
    return 0;
  }
  if (command == "train") return tda::RunTrain(args);
  if (command == "generate") return tda::RunGenerate(args);
  if (command == "import-gpt2") return tda::RunImportGpt2(args);
  if (command == "import") return tda::RunImport(args);
  if (command == "export-hf") return tda::RunExportHf(args);
  if (command == "query") return tda::RunQuery(args);
  if (command == "describe") return tda::RunDescribe(args);
  if (command == "health") return tda::RunHealth(args);
  if (command == "eval") return tda::RunEval(args);
  if (command == "jobs") return tda::RunJobs(args);
  if (command == "data") return tda::RunData(args);
  if (command == "admin") return tda::RunAdmin(args);
  if (command == "ablate") {  // a job submitted and watched: 'tda jobs submit ablation --watch'
    const bool matrix = !args.empty() && args[0] == "matrix";
    if (matrix) args.erase(args.begin());
    args.insert(args.begin(), {"submit", matrix ? "source-task-matrix" : "ablation"});
    if (std::find(args.begin(), args.end(), "--help") == args.end()) args.push_back("--watch");
    return tda::RunJobs(args);
  }
  if (command == "index") {
    if (!args.empty() && (args[0] == "--help" || args[0] == "-h")) {
      std::cout << "Usage: tda index build --model DIR --out DIR [flags]\n"
                   "       tda index verify --index DIR [--json]\n"
                   "       tda index delete --index DIR --ids ID,ID,... [--json]\n"
                   "       tda index append --index DIR --count N [--split train|test] [flags]\n"
                   "       tda index self-influence --index DIR [--top N] [--json]\n"
                   "       tda index split DIR --shards K --out DIR [--json]\n"
                   "       tda index ann --index DIR --kind ivf-flat|ivf-pq|hnsw [flags]\n"
                   "Run 'tda index build --help' for the flags.\n";
      return 0;
    }
    if (!args.empty() && args[0] == "self-influence") {
      args.erase(args.begin());
      return tda::RunIndexSelfInfluence(args);
    }
    if (!args.empty() && args[0] == "ann") {
      args.erase(args.begin());
      return tda::RunIndexAnn(args);
    }
    if (!args.empty() && args[0] == "verify") {
      args.erase(args.begin());
      return tda::RunIndexVerify(args);
    }
    if (!args.empty() && args[0] == "delete") {
      args.erase(args.begin());
      return tda::RunIndexDelete(args);
    }
    if (!args.empty() && args[0] == "append") {
      args.erase(args.begin());
      return tda::RunIndexAppend(args);
    }
    if (!args.empty() && args[0] == "split") {
      args.erase(args.begin());
      return tda::RunIndexSplit(args);
    }
    if (args.empty() || args[0] != "build") {
      return Usage(
          "'tda index' needs a subcommand: build, verify, delete, append, split, self-influence or ann");
    }
    args.erase(args.begin());
    return tda::RunIndexBuild(args);
  }
  return Usage("unknown command '" + command + "'");
}
