// Memory and speed of indexing a TinyLlama-1.1B-shaped model, measured in one process.
//   llama_scale_bench [--weights bf16|f32] [--layers 22] [--hidden 2048] [--mlp 5632]
//                     [--heads 32] [--kv-heads 4] [--vocab 32000] [--seq 128] [--batch 4]
//                     [--batches 2] [--factor-batches 1] [--projection 32]
// The model (TinyLlama's shape by default, random weights N(0, 0.02), untied head) is built in
// memory, its weight matrices held as --weights (bf16: what an imported bf16 checkpoint keeps).
// The batches are real text: the longest fortunes (training split) as byte-level token ids,
// which are valid ids of any vocabulary of 256 or more.
// Phases, each on the same batches, with the peak RSS of the phase (VmHWM reset at its start):
//   gradient pass: Capture + Kronecker projection of per-sample gradients (the index build's
//                  per-row work: no full-size per-sample gradient is formed);
//   factor fitting: FitKroneckerFactors in the projected space on --factor-batches batches
//                  (true-Fisher labels, covariances, eigenvalue correction: three passes);
//   baseline:      a plain forward + backward of the summed loss into every parameter's gradient.
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "ablation/method_scores.h"
#include "curvature/factor_fitting.h"
#include "data/dataset_rows.h"
#include "data/fortunes.h"
#include "grad/projection.h"
#include "model/decoder_model.h"
#include "model/model.h"

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

double Gb(int64_t bytes) { return static_cast<double>(bytes) / 1e9; }

struct Phase {
  const char* name;
  double tokens_per_s = 0;
  int64_t peak_bytes = 0;
};

// The `rows` longest training fortunes of `seq` byte tokens.
tda::Dataset LongestFortunes(int64_t seq, int64_t rows) {
  tda::TextSplitOptions options;
  options.context_length = seq;
  tda::Dataset all =
      tda::LoadFortunes(tda::kFortunesDefaultDir, tda::Split::kTrain, options).value();
  std::vector<int64_t> order(static_cast<size_t>(all.size()));
  for (int64_t i = 0; i < all.size(); ++i) order[static_cast<size_t>(i)] = i;
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return all.used_positions(a) > all.used_positions(b);
  });
  tda::Dataset out = all;
  out.tokens.clear();
  out.targets.clear();
  out.ids.clear();
  out.sources.clear();
  out.previews.clear();
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t i = order[static_cast<size_t>(r)];
    out.tokens.insert(out.tokens.end(), all.tokens.begin() + i * seq,
                      all.tokens.begin() + (i + 1) * seq);
    out.targets.insert(out.targets.end(), all.targets.begin() + i * seq,
                       all.targets.begin() + (i + 1) * seq);
    out.ids.push_back(all.ids[static_cast<size_t>(i)]);
    out.sources.push_back(all.sources[static_cast<size_t>(i)]);
    if (!all.previews.empty()) out.previews.push_back(all.previews[static_cast<size_t>(i)]);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t layers = 22, hidden = 2048, mlp = 5632, heads = 32, kv_heads = 4, vocab = 32000;
  int64_t seq = 128, batch = 4, batches = 2, factor_batches = 1, projection = 32;
  std::string weights = "bf16";
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--help")) {
      std::printf(
          "llama_scale_bench [--weights bf16|f32] [--layers 22] [--hidden 2048] [--mlp 5632]\n"
          "  [--heads 32] [--kv-heads 4] [--vocab 32000] [--seq 128] [--batch 4] [--batches 2]\n"
          "  [--factor-batches 1 (0: skip)] [--projection 32]\n"
          "Tokens/s of the index build's gradient pass and factor fitting against a plain\n"
          "forward+backward of the same random-weight llama on the same fortunes batches, and\n"
          "each phase's peak RSS against the weights' bytes.\n");
      return 0;
    }
    if (i + 1 >= argc) break;
    const std::string flag = argv[i], value = argv[++i];
    if (flag == "--weights")
      weights = value;
    else if (flag == "--layers")
      layers = std::atoll(value.c_str());
    else if (flag == "--hidden")
      hidden = std::atoll(value.c_str());
    else if (flag == "--mlp")
      mlp = std::atoll(value.c_str());
    else if (flag == "--heads")
      heads = std::atoll(value.c_str());
    else if (flag == "--kv-heads")
      kv_heads = std::atoll(value.c_str());
    else if (flag == "--vocab")
      vocab = std::atoll(value.c_str());
    else if (flag == "--seq")
      seq = std::atoll(value.c_str());
    else if (flag == "--batch")
      batch = std::atoll(value.c_str());
    else if (flag == "--batches")
      batches = std::atoll(value.c_str());
    else if (flag == "--factor-batches")
      factor_batches = std::atoll(value.c_str());
    else if (flag == "--projection")
      projection = std::atoll(value.c_str());
    else {
      std::fprintf(stderr, "unknown flag %s (see --help)\n", flag.c_str());
      return 2;
    }
  }
  if (weights != "bf16" && weights != "f32") {
    std::fprintf(stderr, "--weights must be bf16 or f32, got %s\n", weights.c_str());
    return 2;
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress lines appear as they are printed
  tda::InitCompute();
  const tda::Dataset data = LongestFortunes(seq, batch * std::max(batches, factor_batches));

  tda::ModelConfig config = tda::LlamaConfig(vocab, /*context_length=*/seq, hidden, layers, heads,
                                             kv_heads, mlp, /*tied_head=*/false);
  config.rms_norm_eps = 1e-5;
  config.rope_theta = 10000;
  tda::MemoryProbe probe;
  probe.Start();
  auto t = Clock::now();
  std::unique_ptr<tda::DecoderModel> model =
      tda::NewDecoder(config, weights == "bf16" ? torch::kBFloat16 : torch::kFloat32);
  int64_t parameters = 0, weight_bytes = 0;
  {
    torch::NoGradGuard no_grad;
    torch::manual_seed(0);
    for (auto& [name, value] : model->NamedParameters()) {
      parameters += value.numel();
      weight_bytes += value.numel() * static_cast<int64_t>(value.element_size());
      if (value.dim() == 2) value.copy_(torch::randn(value.sizes()) * 0.02);
    }
  }
  const double build_s = Seconds(t);
  const int64_t build_peak = probe.StartBytes() + probe.PeakBytes();

  const tda::Projection proj(model->layout(), projection, /*seed=*/0);
  std::printf(
      "llama %lld layers, hidden %lld, mlp %lld, heads %lld/%lld, vocab %lld: %.3g "
      "parameters, weights %s = %.2f GB (built in %.0f s, peak RSS %.2f GB)\n",
      static_cast<long long>(layers), static_cast<long long>(hidden), static_cast<long long>(mlp),
      static_cast<long long>(heads), static_cast<long long>(kv_heads),
      static_cast<long long>(vocab), static_cast<double>(parameters), weights.c_str(),
      Gb(weight_bytes), build_s, Gb(build_peak));
  std::printf(
      "batches %lld x %lld documents x %lld byte tokens of fortunes; projection %lld per "
      "side (%lld dims over %zu layers); %d threads\n",
      static_cast<long long>(batches), static_cast<long long>(batch), static_cast<long long>(seq),
      static_cast<long long>(projection), static_cast<long long>(proj.output_dim()),
      model->layout().layers.size(), torch::get_num_threads());

  auto batch_tokens = [&](int64_t b) {
    int64_t tokens = 0;
    for (int64_t r = b * batch; r < (b + 1) * batch; ++r) tokens += data.used_positions(r);
    return tokens;
  };
  std::vector<Phase> phases;

  // The index build's gradient pass.
  {
    Phase phase{"gradient pass (capture + projection)"};
    probe.Start();
    int64_t tokens = 0;
    double checksum = 0;
    t = Clock::now();
    for (int64_t b = 0; b < batches; ++b) {
      const tda::BatchCapture capture =
          model->Capture(data.Rows(b * batch, (b + 1) * batch)).value();
      const tda::RowMatrixXf rows = proj.ProjectCapture(capture);
      checksum += rows.cast<double>().squaredNorm();
      tokens += batch_tokens(b);
    }
    phase.tokens_per_s = static_cast<double>(tokens) / Seconds(t);
    phase.peak_bytes = probe.StartBytes() + probe.PeakBytes();
    std::printf("  gradient rows: squared norm %.6g\n", checksum);
    phases.push_back(phase);
  }
  // Factor fitting in the projected space.
  if (factor_batches > 0) {
    Phase phase{"factor fitting (3 passes)"};
    tda::FitOptions fit;
    fit.batch_size = batch;
    fit.max_examples = batch * factor_batches;
    int64_t tokens = 0;
    for (int64_t b = 0; b < factor_batches; ++b) tokens += batch_tokens(b);
    probe.Start();
    t = Clock::now();
    const tda::KroneckerFactors factors =
        tda::FitKroneckerFactors(*model, tda::DatasetRows(data), fit, {}, &proj).value();
    phase.tokens_per_s = static_cast<double>(tokens) / Seconds(t);
    phase.peak_bytes = probe.StartBytes() + probe.PeakBytes();
    std::printf("  factors: %zu layers, A of layer 0 trace %.6g\n", factors.layers.size(),
                factors.layers[0].a_cov.trace());
    phases.push_back(phase);
  }
  // Baseline: plain forward + backward into the parameters' gradients.
  {
    Phase phase{"forward+backward (baseline)"};
    probe.Start();
    int64_t tokens = 0;
    t = Clock::now();
    for (int64_t b = 0; b < batches; ++b) {
      const tda::Batch rows = data.Rows(b * batch, (b + 1) * batch);
      auto ids = [&](const int32_t* p) {
        return torch::from_blob(const_cast<int32_t*>(p), {rows.rows, rows.length}, torch::kInt32)
            .to(torch::kInt64);
      };
      const torch::Tensor logits = model->Logits(ids(rows.tokens));
      const torch::Tensor loss = torch::nn::functional::cross_entropy(
          logits.reshape({-1, vocab}), ids(rows.targets).reshape({-1}),
          torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum).ignore_index(-1));
      loss.backward();
      tokens += batch_tokens(b);
    }
    phase.tokens_per_s = static_cast<double>(tokens) / Seconds(t);
    phase.peak_bytes = probe.StartBytes() + probe.PeakBytes();
    phases.push_back(phase);
  }

  const double baseline = phases.back().tokens_per_s;
  std::printf("\n%-38s %10s %12s %10s %14s\n", "phase", "tokens/s", "vs fwd+bwd", "peak RSS",
              "RSS / weights");
  for (const Phase& phase : phases) {
    std::printf("%-38s %10.1f %11.2fx %8.2f GB %13.2fx\n", phase.name, phase.tokens_per_s,
                phase.tokens_per_s / baseline, Gb(phase.peak_bytes),
                static_cast<double>(phase.peak_bytes) / static_cast<double>(weight_bytes));
  }
  return 0;
}
