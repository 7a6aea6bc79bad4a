// tda train: trains the MLP classifier on Fashion-MNIST (IDX) or on a tensors corpus (.npy
// arrays: --data/--labels, data/tensor_corpus.h) and saves it (safetensors + config.json).
#include <cstdio>
#include <iostream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "client/commands.h"
#include "client/progress_bar.h"
#include "client/tensor_flags.h"
#include "common/atomic_file.h"
#include "common/flags.h"
#include "data/fashion_mnist.h"
#include "data/tensor_corpus.h"
#include "model/model.h"
#include "model/recipe_data.h"
#include "model/trainer.h"

namespace tda {

namespace {

// Writes the misclassified test ids (one per line: id, true, predicted) next to the model, so
// that demos and users can pick interesting queries; returns how many there are.
absl::StatusOr<int64_t> WriteMisclassified(const Model& model, const Dataset& test,
                                           const std::string& path) {
  absl::StatusOr<Eigen::MatrixXf> probs = model.Predict(test.Rows(0, test.size()));
  if (!probs.ok()) return probs.status();
  std::string text = "# test id\ttrue label\tpredicted label\n";
  int64_t count = 0;
  for (int64_t i = 0; i < test.size(); ++i) {
    Eigen::Index predicted;
    probs->row(i).maxCoeff(&predicted);
    if (predicted == test.labels[i]) continue;
    ++count;
    absl::StrAppend(&text, test.ids[i], "\t", test.class_names[test.labels[i]], "\t",
                    test.class_names[predicted], "\n");
  }
  if (absl::Status s = WriteFileAtomically(path, text); !s.ok()) return s;
  return count;
}

}  // namespace

int RunTrain(const Args& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    // Fine-tuning (--init) is of gpt and llama models only.
    if (args[i] == "--init" || absl::StartsWith(args[i], "--init=")) return RunTrainGpt(args);
    for (const char* decoder : {"gpt", "llama"}) {  // both train through RunTrainGpt
      if (args[i] == absl::StrCat("--model-kind=", decoder) ||
          (args[i] == "--model-kind" && i + 1 < args.size() && args[i + 1] == decoder)) {
        return RunTrainGpt(args);
      }
    }
  }
  FlagParser flags("tda train", "--out DIR [options]",
                   "Trains an MLP classifier on Fashion-MNIST (or on .npy arrays: --data,\n"
                   "--labels) and saves it to DIR as\n"
                   "model.safetensors (PyTorch-style names) and config.json (architecture and\n"
                   "recipe). Also writes DIR/misclassified.tsv: the test images it gets wrong.");
  flags.AddRequiredString("out", "DIR", "model directory to write");
  flags.AddString("model-kind", "mlp|gpt|llama", "mlp",
                  "mlp, or gpt / llama: a byte-level GPT or Llama on fortunes, a Llama with a "
                  "--tokenizer, or --init MODEL fine-tuning (see --model-kind gpt --help)");
  flags.AddString("hidden", "W[,W...]", "128", "hidden layer widths ('none' for a linear model)");
  flags.AddString("activation", "relu|tanh", "relu", "hidden activation");
  flags.AddInt("train-size", "N", 0, "train on the first N training images (0 = all 60000)");
  flags.AddInt("epochs", "N", 15, "passes over the training data");
  flags.AddInt("batch-size", "N", 128, "minibatch size");
  flags.AddDouble("lr", "X", 1e-3, "learning rate");
  flags.AddDouble("weight-decay", "X", 0.0, "L2 coefficient on all parameters");
  flags.AddString("optimizer", "adam|sgd", "adam", "optimizer");
  flags.AddDouble("momentum", "X", 0.9, "SGD momentum");
  flags.AddInt("seed", "N", 0, "seed of initialisation and shuffling");
  flags.AddString("data-dir", "DIR", kFashionMnistDefaultDir, "Fashion-MNIST IDX files");
  flags.AddString("data", "FEATURES.npy", "",
                   "train on a tensors corpus: features (N, D) float32/float64/uint8");
  AddTensorCorpusFlags(&flags);
  flags.AddInt("threads", "N", 0, "compute threads (0 = OMP_NUM_THREADS or all cores)");
  if (std::optional<int> exit = flags.ParseOrExit(args)) return *exit;

  ModelConfig config;
  if (absl::Status s = ParseLayerWidths(flags.GetString("hidden"), &config.hidden); !s.ok()) {
    return flags.UsageError(std::string(s.message()));
  }
  config.activation = flags.GetString("activation");
  TrainRecipe recipe;
  recipe.optimizer = flags.GetString("optimizer");
  recipe.learning_rate = flags.GetDouble("lr");
  recipe.momentum = flags.GetDouble("momentum");
  recipe.weight_decay = flags.GetDouble("weight-decay");
  recipe.epochs = flags.GetInt("epochs");
  recipe.batch_size = flags.GetInt("batch-size");
  recipe.seed = static_cast<uint64_t>(flags.GetInt("seed"));
  recipe.train_size = flags.GetInt("train-size");
  recipe.data_dir = flags.GetString("data-dir");
  absl::StatusOr<std::optional<TensorCorpusFiles>> tensors = TensorCorpusFromFlags(flags);
  if (!tensors.ok()) return flags.UsageError(std::string(tensors.status().message()));
  if (tensors->has_value()) {
    recipe.dataset = kTensorsDataset;
    recipe.data_dir = *TensorCorpusSpec(**tensors);
    recipe.held_out_fraction = flags.GetDouble("held-out-fraction");
  }
  if (recipe.optimizer != "adam" && recipe.optimizer != "sgd") {
    return flags.UsageError("--optimizer must be adam or sgd");
  }
  if (recipe.epochs <= 0 || recipe.batch_size <= 0 || recipe.train_size < 0) {
    return flags.UsageError("--epochs and --batch-size must be > 0, --train-size >= 0");
  }
  if (flags.GetInt("threads") < 0) return flags.UsageError("--threads must be >= 0");
  absl::StatusOr<Dataset> train = LoadRecipeData(config, recipe, Split::kTrain);
  if (!train.ok()) return RuntimeError(train.status());
  absl::StatusOr<Dataset> test = LoadRecipeData(config, recipe, Split::kTest);
  if (!test.ok()) return RuntimeError(test.status());
  config.input_dim = train->feature_dim;
  config.num_classes = static_cast<int64_t>(train->class_names.size());
  if (absl::Status s = ValidateModelConfig(config); !s.ok()) {
    return flags.UsageError(std::string(s.message()));
  }
  InitCompute(static_cast<int>(flags.GetInt("threads")));
  absl::StatusOr<std::unique_ptr<Model>> model = CreateModel(config, recipe.seed);
  if (!model.ok()) return RuntimeError(model.status());

  std::cerr << absl::StrFormat("training %s on %d images for %d epochs (%s, lr %g, batch %d)\n",
                               flags.GetString("hidden") == "none"
                                   ? "a linear model"
                                   : absl::StrCat("MLP ", config.input_dim, "-",
                                                  flags.GetString("hidden"), "-",
                                                  config.num_classes),
                               train->size(), recipe.epochs, recipe.optimizer, recipe.learning_rate,
                               recipe.batch_size);
  absl::StatusOr<TrainReport> report;
  {
    ProgressBar bar;
    report = Train(**model, *train, recipe, bar.Callback());
  }
  if (!report.ok()) return RuntimeError(report.status());
  absl::StatusOr<Evaluation> eval = Evaluate(**model, *test);
  if (!eval.ok()) return RuntimeError(eval.status());

  const std::string out = flags.GetString("out");
  if (absl::Status s = SaveTrainedModel(**model, out, recipe, *report); !s.ok()) {
    return RuntimeError(s);
  }
  absl::StatusOr<int64_t> wrong = WriteMisclassified(**model, *test, out + "/misclassified.tsv");
  if (!wrong.ok()) return RuntimeError(wrong.status());
  std::cout << absl::StrFormat(
      "trained in %.1f s, final epoch loss %.4f\n"
      "test accuracy %.2f%% (loss %.4f) on %d test images; %d misclassified (%s)\n"
      "model saved to %s\n",
      report->seconds, report->final_epoch_loss, 100 * eval->accuracy, eval->mean_loss,
      test->size(), *wrong, out + "/misclassified.tsv", out);
  return 0;
}

}  // namespace tda
