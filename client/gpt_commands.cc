// The gpt commands of the tda CLI: `tda train --model-kind gpt` (byte-level GPT on the fortunes
// corpus), `tda generate` and `tda import-gpt2`.
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/commands.h"
#include "client/jsonl_flags.h"
#include "client/progress_bar.h"
#include "client/tensor_flags.h"
#include "common/flags.h"
#include "common/status_macros.h"
#include "data/chunking.h"
#include "data/fortunes.h"
#include "data/token_rows.h"
#include "data/tokenizer.h"
#include "data/tokenizer_files.h"
#include "model/generate.h"
#include "model/gpt2_import.h"
#include "model/model.h"
#include "model/recipe_data.h"
#include "model/trainer.h"

namespace tda {
namespace {

// A named starting point for `tda train --model-kind gpt`; explicit flags override it.
struct GptRecipe {
  ModelConfig config;
  TrainRecipe train;
};

GptRecipe NamedRecipe(const std::string& name) {
  GptRecipe r;
  r.train = FortunesAdamWRecipe();
  if (name == "tiny") {  // seconds: tests and smoke runs
    r.config = GptConfig(/*context_length=*/64, /*d_model=*/32, /*layers=*/2, /*heads=*/2,
                         /*mlp_width=*/64, /*tied_head=*/true);
    r.train.epochs = 2;
    r.train.batch_size = 16;
    r.train.train_size = 400;
    r.train.warmup_steps = 5;
  } else {  // default: 904 steps, ~7 minutes on 2 idle cores
    r.config = GptConfig(/*context_length=*/256, /*d_model=*/64, /*layers=*/4, /*heads=*/4,
                         /*mlp_width=*/256, /*tied_head=*/true);
    r.train.epochs = 2;
    r.train.batch_size = 32;
    r.train.warmup_steps = 100;
  }
  return r;
}

// --init: the init model (its config replaces `config`; explicit shape flags must agree) and its
// tokenizer; the recipe records its path and fingerprint.
absl::StatusOr<std::unique_ptr<Model>> LoadInitModel(const FlagParser& flags,
                                                     const std::string& kind, ModelConfig* config,
                                                     TrainRecipe* recipe) {
  const std::string path = AbsoluteCorpusPath(flags.GetString("init"));
  TrainRecipe init_recipe;
  ASSIGN_OR_RETURN(std::unique_ptr<Model> init, LoadModel(path, &init_recipe));
  const ModelConfig& c = init->config();
  if (!c.is_sequence()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--init ", path, " is an ", c.kind, " model; fine-tune a gpt or llama"));
  }
  if (flags.IsSet("model-kind") && kind != c.kind) {
    return absl::InvalidArgumentError(
        absl::StrCat("--init ", path, " is a ", c.kind, " model, not --model-kind ", kind));
  }
  const std::pair<const char*, int64_t> shape[] = {
      {"context", c.context_length}, {"d-model", c.d_model},
      {"layers", c.layers},          {"heads", c.heads},
      {"mlp-width", c.mlp_width},    {"kv-heads", c.kv_heads}};
  for (const auto& [flag, value] : shape) {
    if (flags.IsSet(flag) && flags.GetInt(flag) != value) {
      return absl::InvalidArgumentError(absl::StrCat("--", flag, " ", flags.GetInt(flag),
                                                     " disagrees with the --init model's ", value,
                                                     " (", path, "); drop the flag"));
    }
  }
  if (flags.GetBool("untied-head") && c.tied_head) {
    return absl::InvalidArgumentError(
        absl::StrCat("--untied-head disagrees with the --init model's tied head (", path, ")"));
  }
  *config = c;
  recipe->tokenizer_name = init_recipe.tokenizer_name;
  recipe->tokenizer_fingerprint = init_recipe.tokenizer_fingerprint;
  recipe->tokenizer_path = init_recipe.tokenizer_path;
  recipe->init_model = path;
  recipe->init_fingerprint = init->Fingerprint();
  return init;
}

// --tokenizer: the recipe records it (files copied into the model on save); a new model's
// vocabulary follows it; an --init model must already use it.
absl::Status UseTokenizer(const FlagParser& flags, ModelConfig* config, TrainRecipe* recipe) {
  if (config->kind != "llama") {
    return absl::InvalidArgumentError("--tokenizer needs --model-kind llama (gpt is byte-level)");
  }
  if (recipe->dataset != "jsonl") {
    return absl::InvalidArgumentError(
        "--tokenizer needs a JSONL corpus (--data): the built-in fortunes corpus is "
        "byte-tokenized");
  }
  const std::string path = AbsoluteCorpusPath(flags.GetString("tokenizer"));
  ASSIGN_OR_RETURN(const TokenizerFiles files, FindTokenizerFiles(path));
  if (files.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--tokenizer ", path, " holds no tokenizer files (tokenizer.model, tokenizer.json, ...)"));
  }
  ASSIGN_OR_RETURN(const std::unique_ptr<Tokenizer> tokenizer, LoadTokenizerFiles(files));
  ASSIGN_OR_RETURN(const std::string fingerprint, TokenizerFingerprint(files));
  if (!recipe->init_model.empty()) {
    if (fingerprint != recipe->tokenizer_fingerprint) {
      return absl::InvalidArgumentError(
          absl::StrCat("--tokenizer ", path, " is not the tokenizer of the --init model (",
                       recipe->tokenizer_name.empty() ? "bytes" : recipe->tokenizer_name,
                       "); drop --tokenizer to use the init's"));
    }
    return absl::OkStatus();
  }
  RETURN_IF_ERROR(DocumentMarkersOf(*tokenizer).status());
  config->num_classes = tokenizer->vocabulary_size();
  recipe->tokenizer_name = tokenizer->name();
  recipe->tokenizer_fingerprint = fingerprint;
  recipe->tokenizer_path = path;
  return absl::OkStatus();
}

}  // namespace

int RunTrainGpt(const Args& args) {
  FlagParser flags(
      "tda train --model-kind gpt", "--out DIR [options]",
      "Trains a byte-level GPT on the Debian fortunes corpus (one document per\n"
      "fortune) or on a JSONL corpus (--data), held-out split by id hash, and saves it\n"
      "to DIR as model.safetensors (GPT-2 names) and config.json. Reports held-out\n"
      "loss in nats/byte against the unigram baseline.\n"
      "Documents longer than the context are chunked: windows of the context that\n"
      "start --chunk-stride bytes apart, each a training row (and an index row) with\n"
      "id <document id>#<k>; a byte's loss counts in the first window that holds it.\n"
      "--chunk-stride 0 cuts them at the context instead (as models trained before\n"
      "chunking). The stride is recorded in the model's recipe.");
  flags.AddRequiredString("out", "DIR", "model directory to write");
  flags.AddString("model-kind", "gpt|llama", "gpt",
                  "gpt, or llama (RMSNorm, rotary positions, SwiGLU, grouped-query attention) of "
                  "the recipe's shape (mlp: see 'tda train --help')");
  flags.AddInt("kv-heads", "N", 0, "llama: key/value heads, dividing --heads (0 = --heads)");
  flags.AddString("recipe", "default|tiny", "default",
                  "starting recipe: default (~7 min on 2 cores) or tiny (seconds)");
  flags.AddInt("context", "N", 0, "context length in bytes (0 = recipe's)");
  flags.AddInt("d-model", "N", 0, "model width (0 = recipe's)");
  flags.AddInt("layers", "N", 0, "transformer blocks (0 = recipe's)");
  flags.AddInt("heads", "N", 0, "attention heads (0 = recipe's)");
  flags.AddInt("mlp-width", "N", 0, "MLP hidden width (0 = recipe's)");
  flags.AddBool("untied-head", "give the output head its own (tracked) weights");
  flags.AddInt("epochs", "N", 0, "passes over the training documents (0 = recipe's)");
  flags.AddInt("batch-size", "N", 0, "rows (documents or chunks) per step (0 = recipe's)");
  flags.AddInt("train-size", "N", -1,
               "train on the first N training rows (documents or chunks; 0 = all, -1 = recipe's)");
  flags.AddInt("chunk-stride", "N", -1,
               "long documents: windows N bytes apart, 1 <= N <= context (-1 = the context: "
               "windows that do not overlap; 0 = truncate at the context)");
  flags.AddDouble("lr", "X", 0, "peak learning rate (0 = recipe's)");
  flags.AddDouble("weight-decay", "X", -1, "AdamW decoupled weight decay (-1 = recipe's)");
  flags.AddInt("warmup", "N", -1, "warmup steps (-1 = recipe's)");
  flags.AddDouble("clip", "X", -1, "gradient-norm clipping (0 = off, -1 = recipe's)");
  flags.AddInt("seed", "N", 0, "seed of initialisation and shuffling");
  flags.AddDouble("held-out", "X", 0.05, "fraction of documents held out (by id hash)");
  flags.AddString("data-dir", "DIR", kFortunesDefaultDir, "the fortunes corpus");
  flags.AddString("data", "FILE[,FILE...]", "",
                  "train on a JSONL corpus instead (.jsonl, .jsonl.gz, .jsonl.zst; one document "
                  "per line)");
  AddJsonlFlags(&flags);
  flags.AddString("cache-dir", "DIR", "",
                  "token cache of JSONL corpora (default: $TDA_CACHE_DIR, else "
                  "$XDG_CACHE_HOME/tda, else ~/.cache/tda)");
  flags.AddString("tokenizer", "DIR|FILE", "",
                  "llama with --data: tokenize with this Hugging Face tokenizer (a directory, a "
                  "SentencePiece .model such as spm_train writes, or a tokenizer.json) instead "
                  "of bytes; vocab_size follows it, and its files are copied into the model");
  flags.AddString("init", "MODEL", "",
                  "fine-tune: start from this model's weights (e.g. tda import --hf) instead of "
                  "a fresh initialisation; its architecture and tokenizer are used (shape flags "
                  "must agree)");
  flags.AddInt("threads", "N", 0, "compute threads (0 = OMP_NUM_THREADS or all cores)");
  if (std::optional<int> exit = flags.ParseOrExit(args)) return *exit;
  const std::string kind = flags.GetString("model-kind");
  if (kind != "gpt" && kind != "llama")
    return flags.UsageError("--model-kind must be gpt or llama");
  if (flags.GetString("recipe") != "default" && flags.GetString("recipe") != "tiny") {
    return flags.UsageError("--recipe must be default or tiny");
  }
  GptRecipe r = NamedRecipe(flags.GetString("recipe"));
  ModelConfig& config = r.config;
  TrainRecipe& recipe = r.train;
  auto override_int = [&](const char* flag, int64_t* field, int64_t unset) {
    if (flags.GetInt(flag) != unset) *field = flags.GetInt(flag);
  };
  override_int("context", &config.context_length, 0);
  override_int("d-model", &config.d_model, 0);
  override_int("layers", &config.layers, 0);
  override_int("heads", &config.heads, 0);
  override_int("mlp-width", &config.mlp_width, 0);
  if (flags.GetBool("untied-head")) config.tied_head = false;
  if (kind == "llama") {
    config = LlamaConfig(config.num_classes, config.context_length, config.d_model, config.layers,
                         config.heads,
                         flags.GetInt("kv-heads") > 0 ? flags.GetInt("kv-heads") : config.heads,
                         config.mlp_width, config.tied_head);
  }
  override_int("epochs", &recipe.epochs, 0);
  override_int("batch-size", &recipe.batch_size, 0);
  override_int("train-size", &recipe.train_size, -1);
  override_int("warmup", &recipe.warmup_steps, -1);
  recipe.chunk_stride =
      flags.GetInt("chunk-stride") == -1 ? config.context_length : flags.GetInt("chunk-stride");
  if (recipe.chunk_stride < 0 || recipe.chunk_stride > config.context_length) {
    return flags.UsageError(absl::StrCat("--chunk-stride must be -1 or in [0, the context ",
                                         config.context_length, "]"));
  }
  if (flags.GetDouble("lr") != 0) recipe.learning_rate = flags.GetDouble("lr");
  if (flags.GetDouble("weight-decay") != -1) recipe.weight_decay = flags.GetDouble("weight-decay");
  if (flags.GetDouble("clip") != -1) recipe.clip_norm = flags.GetDouble("clip");
  recipe.seed = static_cast<uint64_t>(flags.GetInt("seed"));
  recipe.data_dir = flags.GetString("data-dir");
  if (flags.IsSet("data")) {
    absl::StatusOr<JsonlOptions> jsonl = JsonlOptionsFromFlags(flags);
    if (!jsonl.ok()) return flags.UsageError(std::string(jsonl.status().message()));
    if (absl::Status s = UseJsonlCorpus(*jsonl, &recipe); !s.ok()) return RuntimeError(s);
  }
  recipe.held_out_fraction = flags.GetDouble("held-out");
  if (recipe.epochs <= 0 || recipe.batch_size <= 0 || recipe.train_size < 0) {
    return flags.UsageError("--epochs and --batch-size must be > 0, --train-size >= 0");
  }
  if (flags.GetInt("threads") < 0) return flags.UsageError("--threads must be >= 0");
  if (!(recipe.held_out_fraction > 0 && recipe.held_out_fraction < 1)) {
    return flags.UsageError("--held-out must be in (0, 1)");
  }
  std::unique_ptr<Model> init;
  if (flags.IsSet("init")) {
    absl::StatusOr<std::unique_ptr<Model>> loaded = LoadInitModel(flags, kind, &config, &recipe);
    if (!loaded.ok()) return flags.UsageError(std::string(loaded.status().message()));
    init = *std::move(loaded);
    if (flags.GetInt("chunk-stride") == -1) recipe.chunk_stride = config.context_length;
    if (recipe.chunk_stride > config.context_length) {
      return flags.UsageError(absl::StrCat("--chunk-stride must be -1 or in [0, the context ",
                                           config.context_length, "]"));
    }
  }
  if (flags.IsSet("tokenizer")) {
    if (absl::Status s = UseTokenizer(flags, &config, &recipe); !s.ok()) {
      return flags.UsageError(std::string(s.message()));
    }
  }
  if (absl::Status s = ValidateModelConfig(config); !s.ok()) {
    return flags.UsageError(std::string(s.message()));
  }
  InitCompute(static_cast<int>(flags.GetInt("threads")));

  // All training documents (the recipe's train_size is applied by the trainer below).
  TrainRecipe all_documents = recipe;
  all_documents.train_size = 0;
  absl::StatusOr<Dataset> train =
      LoadRecipeData(config, all_documents, Split::kTrain, "", &recipe.truncated,
                     /*allow_changed_corpus=*/false, flags.GetString("cache-dir"));
  if (!train.ok()) return RuntimeError(train.status());
  absl::StatusOr<Dataset> held_out =
      LoadRecipeData(config, recipe, Split::kTest, "", nullptr, /*allow_changed_corpus=*/false,
                     flags.GetString("cache-dir"));
  if (!held_out.ok()) return RuntimeError(held_out.status());
  absl::StatusOr<std::unique_ptr<Model>> model = std::move(init);
  if (*model == nullptr) model = CreateModel(config, recipe.seed);
  if (!model.ok()) return RuntimeError(model.status());

  const int64_t used =
      recipe.train_size > 0 ? std::min(recipe.train_size, train->size()) : train->size();
  int64_t documents = 0;  // among the rows used: a document's chunks are consecutive rows
  for (int64_t r = 0; r < used; ++r) {
    if (r == 0 || DocumentOfRow(train->ids[r]) != DocumentOfRow(train->ids[r - 1])) ++documents;
  }
  const std::string long_documents =
      recipe.chunk_stride > 0
          ? absl::StrFormat("long ones chunked, windows %d bytes apart", recipe.chunk_stride)
          : absl::StrFormat("%d truncated at the context", recipe.truncated);
  std::cerr << absl::StrFormat(
      "training a %s %s (%d blocks, width %d, %d heads, MLP %d, context %d, %s head; "
      "%d tracked parameters) on %d rows of %d documents (%s) for %d epochs "
      "(adamw, lr %g, batch %d)\n",
      recipe.tokenizer_name.empty() ? "byte-level" : recipe.tokenizer_name,
      config.kind == "llama" ? "Llama" : "GPT", config.layers, config.d_model, config.heads,
      config.mlp_width, config.context_length, config.tied_head ? "tied" : "untied",
      (*model)->layout().total(), used, documents, long_documents, recipe.epochs,
      recipe.learning_rate, recipe.batch_size);
  absl::StatusOr<TrainReport> report;
  {
    ProgressBar bar;
    report = Train(**model, *train, recipe, bar.Callback());
  }
  if (!report.ok()) return RuntimeError(report.status());
  absl::StatusOr<Evaluation> eval = Evaluate(**model, *held_out);
  if (!eval.ok()) return RuntimeError(eval.status());
  const double unigram = UnigramCrossEntropy(*train, *held_out, config.num_classes);

  const std::string out = flags.GetString("out");
  if (absl::Status s = SaveTrainedModel(**model, out, recipe, *report); !s.ok()) {
    return RuntimeError(s);
  }
  const char* unit = recipe.tokenizer_name.empty() ? "byte" : "token";
  std::cout << absl::StrFormat(
      "trained in %.1f s, first step loss %.4f, final epoch loss %.4f nats/%s\n"
      "held-out loss %.4f nats/%s on %d rows (unigram baseline %.4f), next-%s accuracy "
      "%.1f%%\nmodel saved to %s\n",
      report->seconds, report->first_step_loss, report->final_epoch_loss, unit, eval->mean_loss,
      unit, held_out->size(), unigram, unit, 100 * eval->accuracy, out);
  return 0;
}

int RunGenerate(const Args& args) {
  FlagParser flags(
      "tda generate", "--model DIR --prompt TEXT [options]",
      "Samples a completion of TEXT from a language model (gpt or llama, trained here or\n"
      "imported with 'tda import --hf') with the model's own tokenizer, and prints it (prompt\n"
      "not repeated), so that it can be attributed with 'tda query --prompt --completion'.");
  flags.AddRequiredString("model", "DIR",
                          "model directory (tda train --model-kind gpt|llama, or tda import)");
  flags.AddString("prompt", "TEXT", "", "text to continue");
  flags.AddInt("max-tokens", "N", 200,
               "most tokens to generate (bytes for a byte-level model; stops at end of document)");
  flags.AddDouble("temperature", "T", 0.8, "sampling temperature (0 = greedy)");
  flags.AddInt("top-k", "K", 40, "sample among the K most likely tokens (0 = all)");
  flags.AddInt("seed", "N", 0, "sampling seed");
  flags.AddInt("threads", "N", 0, "compute threads (0 = OMP_NUM_THREADS or all cores)");
  if (std::optional<int> exit = flags.ParseOrExit(args)) return *exit;
  GenerateOptions options;
  options.max_tokens = flags.GetInt("max-tokens");
  options.temperature = flags.GetDouble("temperature");
  options.top_k = flags.GetInt("top-k");
  options.seed = static_cast<uint64_t>(flags.GetInt("seed"));
  if (options.max_tokens < 0 || options.top_k < 0 || !(options.temperature >= 0)) {
    return flags.UsageError("--max-tokens, --top-k and --temperature must be >= 0");
  }
  InitCompute(static_cast<int>(flags.GetInt("threads")));
  TrainRecipe recipe;
  absl::StatusOr<std::unique_ptr<Model>> model = LoadModel(flags.GetString("model"), &recipe);
  if (!model.ok()) return RuntimeError(model.status());
  if (!(*model)->config().is_sequence()) {
    return RuntimeError(absl::InvalidArgumentError(
        absl::StrCat("tda generate needs a language model (gpt or llama); ", flags.GetString("model"),
                     " holds an ", (*model)->config().kind)));
  }
  absl::StatusOr<std::shared_ptr<const Tokenizer>> tokenizer =
      RecipeTokenizer((*model)->config(), recipe);
  if (!tokenizer.ok()) return RuntimeError(tokenizer.status());
  absl::StatusOr<std::string> text =
      Generate(**model, **tokenizer, flags.GetString("prompt"), options);
  if (!text.ok()) return RuntimeError(text.status());
  std::cout << *text;
  if (text->empty() || text->back() != '\n') std::cout << "\n";
  return 0;
}

int RunImportGpt2(const Args& args) {
  FlagParser flags("tda import-gpt2", "--in FILE --heads N --out DIR",
                   "Converts a safetensors file with Hugging Face GPT-2 names (Conv1D weights\n"
                   "stored in x out) into a tda gpt model directory. The vocabulary must be\n"
                   "tda's 257 byte tokens; the shape is read from the tensors, except the number\n"
                   "of attention heads.");
  flags.AddRequiredString("in", "FILE", "GPT-2-named safetensors file");
  flags.AddRequiredString("out", "DIR", "model directory to write");
  flags.AddInt("heads", "N", 0, "attention heads (not visible in the tensor shapes)");
  if (std::optional<int> exit = flags.ParseOrExit(args)) return *exit;
  if (flags.GetInt("heads") <= 0) return flags.UsageError("--heads must be > 0");
  absl::StatusOr<std::unique_ptr<Model>> model =
      ImportGpt2(flags.GetString("in"), flags.GetInt("heads"));
  if (!model.ok()) return RuntimeError(model.status());
  TrainRecipe recipe;
  recipe.dataset = "fortunes";
  recipe.data_dir = kFortunesDefaultDir;
  if (absl::Status s = (*model)->Save(flags.GetString("out"), recipe); !s.ok()) {
    return RuntimeError(s);
  }
  const ModelConfig& c = (*model)->config();
  std::cout << absl::StrFormat("imported %d blocks, width %d, context %d, %s head into %s\n",
                               c.layers, c.d_model, c.context_length,
                               c.tied_head ? "tied" : "untied", flags.GetString("out"));
  return 0;
}

}  // namespace tda
