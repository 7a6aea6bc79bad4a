#include "ablation/eval_protocol.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "model/model_config.h"

namespace tda {
namespace {

// One preset: the row of the table below.
struct Preset {
  const char* protocol;
  const char* experiment;
  const char* model;
  int64_t train_size, queries, side;
  std::vector<int64_t> hidden;
  double dropout;
  const char* optimizer;
  double learning_rate, momentum;
  int64_t epochs, batch_size;
  double weight_decay;
  int64_t subsets;
};

const std::vector<Preset>& Presets() {
  static const std::vector<Preset>* presets = new std::vector<Preset>{
      // protocol experiment model  N    Q    side hidden    drop opt    lr    mom  ep  batch wd   M
      {"tda", "lds", "mlp", 1000, 20, 14, {16}, 0.0, "adam", 1e-3, 0.9, 40, 64, 1e-3, 50},
      {"tda", "lds", "lr", 1000, 20, 14, {}, 0.0, "adam", 1e-3, 0.9, 40, 64, 1e-3, 50},
      {"tda", "loo", "lr", 1000, 20, 14, {}, 0.0, "adam", 1e-3, 0.9, 3, 64, 0.01, 0},
      {"dattri", "lds", "lr", 5000, 500, 28, {}, 0.0, "sgd", 0.01, 0.0, 20, 32, 0.0, 50},
      {"dattri", "lds", "mlp", 5000, 500, 28, {128, 64}, 0.1, "sgd", 0.01, 0.9, 50, 32, 0.0, 50},
      {"dattri", "loo", "lr", 5000, 20, 28, {}, 0.0, "sgd", 0.01, 0.0, 20, 32, 0.01, 0},
  };
  return *presets;
}

// The language-model LDS (tda eval lds --model gpt): a one-layer byte-level gpt (d_model 32,
// 16,640 parameters) trained with AdamW on the first 512 fortunes; the queries are the first 48
// held-out fortunes, measured by their summed log-loss.
EvalSetup GptLdsSetup() {
  EvalSetup setup;
  setup.model = "gpt";
  setup.train_size = 512;
  setup.queries = 48;
  setup.side = 0;
  setup.config = GptConfig(/*context_length=*/64, /*d_model=*/32, /*layers=*/1, /*heads=*/2,
                           /*mlp_width=*/64, /*tied_head=*/false);
  TrainRecipe& r = setup.recipe;
  r = FortunesAdamWRecipe();
  r.warmup_steps = 5;
  r.epochs = 6;
  r.batch_size = 16;
  setup.lds.subsets = 50;
  setup.lds.alpha = 0.5;
  return setup;
}

}  // namespace

absl::StatusOr<EvalSetup> ProtocolSetup(const std::string& protocol, const std::string& experiment,
                                        const std::string& model) {
  if (protocol != "tda" && protocol != "dattri") {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown protocol '", protocol, "' (known: tda, dattri)"));
  }
  if (model != "lr" && model != "mlp" && model != "gpt") {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown model '", model, "' (known: lr, mlp, gpt)"));
  }
  if (model == "gpt") {
    if (protocol != "tda" || experiment != "lds") {
      return absl::InvalidArgumentError(
          "the gpt preset is an lds experiment of protocol tda (dattri defines no language model)");
    }
    return GptLdsSetup();
  }
  for (const Preset& p : Presets()) {
    if (protocol != p.protocol || experiment != p.experiment || model != p.model) continue;
    EvalSetup setup;
    setup.model = p.model;
    setup.train_size = p.train_size;
    setup.queries = p.queries;
    setup.side = p.side;
    setup.config.hidden = p.hidden;
    setup.config.dropout = p.dropout;
    setup.recipe.optimizer = p.optimizer;
    setup.recipe.learning_rate = p.learning_rate;
    setup.recipe.momentum = p.momentum;
    setup.recipe.epochs = p.epochs;
    setup.recipe.batch_size = p.batch_size;
    setup.recipe.weight_decay = p.weight_decay;
    if (p.subsets > 0) setup.lds.subsets = p.subsets;
    setup.lds.alpha = 0.5;
    return setup;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "protocol ", protocol, " has no ", experiment, " preset for model ", model,
      experiment == "loo" ? " (leave-one-out needs the convex model: --model lr)" : ""));
}

std::string DescribeProtocols(const std::string& experiment) {
  std::vector<std::string> lines;
  for (const Preset& p : Presets()) {
    if (experiment != p.experiment) continue;
    const std::string arch = p.hidden.empty() ? "logistic regression"
                                              : absl::StrCat("MLP ", absl::StrJoin(p.hidden, "-"));
    std::string line = absl::StrFormat(
        "  --protocol %-6s --model %-3s  %dx%d, N %d, %d queries, %s%s; %s lr %g%s, %d epochs, "
        "batch %d, wd %g",
        p.protocol, p.model, p.side, p.side, p.train_size, p.queries, arch,
        p.dropout > 0 ? absl::StrCat(", dropout ", p.dropout) : "", p.optimizer, p.learning_rate,
        std::string(p.optimizer) == "sgd" && p.momentum > 0 ? absl::StrCat(" momentum ", p.momentum)
                                                            : "",
        p.epochs, p.batch_size, p.weight_decay);
    if (p.subsets > 0) absl::StrAppend(&line, absl::StrFormat("; %d subsets of 0.5", p.subsets));
    lines.push_back(line);
  }
  if (experiment == "lds") {
    lines.push_back(
        "  --protocol tda    --model gpt  fortunes: first 512 documents of 64 bytes, 48 held-out "
        "queries (summed log-loss), gpt d_model 32, 1 layer; adamw lr 0.003 cosine, 6 epochs, "
        "batch 16, wd 0.1; 50 subsets of 0.5");
  }
  return absl::StrJoin(lines, "\n");
}

}  // namespace tda
