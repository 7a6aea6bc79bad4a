// The gpt model kind on the real fortunes corpus: byte rows, the reader, per-sample gradients
// against an independent LibTorch forward, GPT-2-name import, training, generation, and
// EK-FAC against exact influence on a GPT small enough for an explicit Gauss-Newton matrix.
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>
#include <set>

#include "common/safetensors.h"
#include "common/statistics.h"
#include "curvature/ekfac.h"
#include "curvature/exact.h"
#include "curvature/factor_fitting.h"
#include "data/byte_tokenizer.h"
#include "data/fortunes.h"
#include "grad/per_sample_gradients.h"
#include "model/generate.h"
#include "model/gpt2_import.h"
#include "model/model.h"
#include "model/trainer.h"
#include "test_support.h"

namespace tda {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::StatusIs;
using testing::TempDir;

TEST(ByteTokenizer, DocumentAndCompletionRows) {
  std::vector<int32_t> tokens(6), targets(6);
  EXPECT_FALSE(WriteDocumentRow("ab", 6, tokens.data(), targets.data()));
  EXPECT_THAT(tokens, ElementsAre(256, 'a', 'b', 256, 256, 256));
  EXPECT_THAT(targets, ElementsAre('a', 'b', 256, -1, -1, -1));
  tokens.assign(3, 0);
  targets.assign(3, 0);
  EXPECT_TRUE(WriteDocumentRow("abcd", 3, tokens.data(), targets.data()));
  EXPECT_THAT(tokens, ElementsAre(256, 'a', 'b'));
  EXPECT_THAT(targets, ElementsAre('a', 'b', 'c'));

  TDA_ASSERT_OK(MakeCompletionRow("Hi", "yo!", 16, &tokens, &targets));
  EXPECT_THAT(tokens, ElementsAre(256, 'H', 'i', 'y', 'o'));
  EXPECT_THAT(targets, ElementsAre(-1, -1, 'y', 'o', '!'));
  EXPECT_THAT(MakeCompletionRow("Hi", "", 16, &tokens, &targets),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty")));
  EXPECT_THAT(MakeCompletionRow("Hello", "world", 8, &tokens, &targets),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("10 bytes")));
  EXPECT_EQ(DecodeBytes(EncodeBytes("z\xff\n")), "z\xff\n");
}

TEST(Fortunes, ReaderSplitsEntriesAndNumbersThemByPosition) {
  TempDir dir;
  std::ofstream(dir.file("alpha")) << "first\nline two\n%\n  \n%\nthird\n%\n";
  std::ofstream(dir.file("alpha.dat")) << "binary index";
  std::ofstream(dir.file("beta")) << "only one, no final separator\n";
  auto docs = ReadFortunes(dir.path());
  TDA_ASSERT_OK(docs);
  ASSERT_EQ(docs->size(), 3u);
  EXPECT_EQ((*docs)[0].id, "fortunes/alpha/0");
  EXPECT_EQ((*docs)[0].text, "first\nline two\n");
  EXPECT_EQ((*docs)[1].id, "fortunes/alpha/2");  // the blank entry 1 is skipped, not renumbered
  EXPECT_EQ((*docs)[1].text, "third\n");
  EXPECT_EQ((*docs)[2].id, "fortunes/beta/0");
  EXPECT_EQ((*docs)[2].source, "beta");
  EXPECT_EQ((*docs)[2].text, "only one, no final separator\n");
  EXPECT_THAT(ReadFortunes(dir.file("missing")),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("fortunes")));
}

TEST(Fortunes, RealCorpusCountsSourcesAndStableSplit) {
  auto docs = ReadFortunes(kFortunesDefaultDir);
  TDA_ASSERT_OK(docs);
  std::set<std::string> ids, sources;
  for (const TextDocument& d : *docs) {
    ids.insert(d.id);
    sources.insert(d.source);
    ASSERT_EQ(d.id.rfind("fortunes/" + d.source + "/", 0), 0u) << d.id;
  }
  EXPECT_EQ(ids.size(), docs->size());  // unique
  EXPECT_GT(docs->size(), 10000u);
  EXPECT_GT(sources.size(), 30u);
  EXPECT_EQ(sources.count("computers"), 1u);
  EXPECT_EQ(sources.count("off"), 0u);
  std::cout << docs->size() << " fortunes in " << sources.size() << " categories\n";

  TextSplitOptions options;
  options.context_length = 256;
  int64_t truncated = 0;
  auto train = LoadFortunes(kFortunesDefaultDir, Split::kTrain, options, &truncated);
  auto held_out = LoadFortunes(kFortunesDefaultDir, Split::kTest, options);
  TDA_ASSERT_OK(train);
  TDA_ASSERT_OK(held_out);
  EXPECT_EQ(train->size() + held_out->size(), static_cast<int64_t>(docs->size()));
  const double fraction = static_cast<double>(held_out->size()) / static_cast<double>(docs->size());
  EXPECT_NEAR(fraction, 0.05, 0.01);
  EXPECT_GT(truncated, 0);
  EXPECT_LT(truncated, train->size() / 5);
  EXPECT_EQ(train->name, "fortunes/train");
  EXPECT_EQ(train->previews.size(), static_cast<size_t>(train->size()));
  // Membership depends on the id only: a second read and a different limit agree.
  options.limit = 100;
  auto head = LoadFortunes(kFortunesDefaultDir, Split::kTrain, options);
  TDA_ASSERT_OK(head);
  for (int64_t i = 0; i < head->size(); ++i) EXPECT_EQ(head->ids[i], train->ids[i]);
  for (const std::string& id : held_out->ids) EXPECT_TRUE(IsHeldOut(id, 0, 0.05)) << id;
}

ModelConfig TinyGptConfig(bool tied_head) {
  return GptConfig(/*context_length=*/48, /*d_model=*/16, /*layers=*/2, /*heads=*/2,
                   /*mlp_width=*/32, tied_head);
}

// Summed loss of one unpadded row (inputs `ids`, targets `next`) through a plain LibTorch
// transformer built from the saved safetensors file (written independently of gpt.cc), and its
// gradient in ParamLayout order.
Eigen::VectorXf ReferenceGradient(const SafetensorsFile& file, const ModelConfig& config,
                                  const ParamLayout& layout, const std::vector<int64_t>& ids,
                                  const std::vector<int64_t>& next, double* loss_out) {
  std::map<std::string, torch::Tensor> p;
  for (const std::string& name : file.names()) {
    TensorView v = file.Get(name).value();
    p[name] =
        torch::from_blob(const_cast<char*>(v.bytes.data()), v.shape).to(torch::kFloat64).clone();
  }
  for (const TrackedLayer& layer : layout.layers) {
    p[layer.name + ".weight"].set_requires_grad(true);
    if (layer.has_bias) p[layer.name + ".bias"].set_requires_grad(true);
  }
  const int64_t n = static_cast<int64_t>(ids.size()), d = config.d_model, h = config.heads;
  namespace F = torch::nn::functional;
  torch::Tensor x = p["wte.weight"].index({torch::tensor(ids)}) + p["wpe.weight"].slice(0, 0, n);
  const torch::Tensor allowed = torch::tril(torch::ones({n, n}));
  for (int64_t l = 0; l < config.layers; ++l) {
    auto w = [&](const std::string& name) { return p["h." + std::to_string(l) + "." + name]; };
    torch::Tensor y = F::layer_norm(
        x, F::LayerNormFuncOptions({d}).weight(w("ln_1.weight")).bias(w("ln_1.bias")));
    torch::Tensor qkv = F::linear(y, w("attn.c_attn.weight"), w("attn.c_attn.bias"));
    std::vector<torch::Tensor> heads;
    for (int64_t k = 0; k < h; ++k) {
      const int64_t dh = d / h;
      torch::Tensor q = qkv.slice(1, k * dh, (k + 1) * dh);
      torch::Tensor key = qkv.slice(1, d + k * dh, d + (k + 1) * dh);
      torch::Tensor v = qkv.slice(1, 2 * d + k * dh, 2 * d + (k + 1) * dh);
      torch::Tensor s = q.matmul(key.t()) / std::sqrt(static_cast<double>(dh));
      s = s - 1e9 * (1 - allowed);
      heads.push_back(torch::softmax(s, 1).matmul(v));
    }
    x = x + F::linear(torch::cat(heads, 1), w("attn.c_proj.weight"), w("attn.c_proj.bias"));
    y = F::layer_norm(x,
                      F::LayerNormFuncOptions({d}).weight(w("ln_2.weight")).bias(w("ln_2.bias")));
    torch::Tensor u = F::linear(y, w("mlp.c_fc.weight"), w("mlp.c_fc.bias"));
    u = 0.5 * u * (1 + torch::tanh(std::sqrt(2.0 / M_PI) * (u + 0.044715 * u.pow(3))));
    x = x + F::linear(u, w("mlp.c_proj.weight"), w("mlp.c_proj.bias"));
  }
  x = F::layer_norm(x, F::LayerNormFuncOptions({d}).weight(p["ln_f.weight"]).bias(p["ln_f.bias"]));
  torch::Tensor logits = x.matmul((config.tied_head ? p["wte.weight"] : p["lm_head.weight"]).t());
  torch::Tensor loss = F::cross_entropy(logits, torch::tensor(next),
                                        F::CrossEntropyFuncOptions().reduction(torch::kSum));
  loss.backward();
  *loss_out = loss.item<double>();
  Eigen::VectorXf flat(layout.total());
  for (const TrackedLayer& layer : layout.layers) {
    Eigen::Map<RowMatrixXf> block(flat.data() + layer.offset, layer.out, layer.cols());
    torch::Tensor gw = p[layer.name + ".weight"].grad().to(torch::kFloat32).contiguous();
    block.leftCols(layer.in) = Eigen::Map<RowMatrixXf>(gw.data_ptr<float>(), layer.out, layer.in);
    if (layer.has_bias) {
      torch::Tensor gb = p[layer.name + ".bias"].grad().to(torch::kFloat32).contiguous();
      block.col(layer.in) = Eigen::Map<Eigen::VectorXf>(gb.data_ptr<float>(), layer.out);
    }
  }
  return flat;
}

TEST(Gpt, PerSampleGradientsEqualBatchSizeOneBackward) {
  for (bool tied : {true, false}) {
    SCOPED_TRACE(tied ? "tied head" : "untied head");
    const ModelConfig config = TinyGptConfig(tied);
    const Dataset& docs = testing::FortunesTrain(200, config.context_length);
    std::unique_ptr<Model> model = testing::TrainTinyGpt(config, docs, 1);
    ASSERT_NE(model, nullptr);
    TempDir dir;
    TDA_ASSERT_OK(model->Save(dir.path(), TrainRecipe{}));
    auto weights = SafetensorsFile::Read(dir.file("model.safetensors"));
    TDA_ASSERT_OK(weights);

    // 12 documents of different lengths (some truncated, most padded) in one batch.
    constexpr int64_t kRows = 12;
    auto capture = model->Capture(docs.Rows(0, kRows));
    TDA_ASSERT_OK(capture);
    EXPECT_LE(capture->positions, config.context_length);
    const RowMatrixXf grads = PerSampleGradients(*capture, model->layout());
    for (int64_t i = 0; i < kRows; ++i) {
      // The row as the reader wrote it, without padding: [EOD, bytes...] -> [bytes..., EOD],
      // cut at the context (then the last target is a byte, not EOD).
      const std::string& text = docs.previews[i];
      std::vector<int64_t> ids = {kEndOfDocument}, next;
      for (unsigned char c : text) ids.push_back(c);
      next.assign(ids.begin() + 1, ids.end());
      next.push_back(kEndOfDocument);
      const bool cut = static_cast<int64_t>(ids.size()) > config.context_length;
      ids.resize(std::min<size_t>(ids.size(), config.context_length));
      next.resize(ids.size());
      double loss = 0;
      const Eigen::VectorXf expected =
          ReferenceGradient(**weights, config, model->layout(), ids, next, &loss);
      const double rel = (grads.row(i).transpose() - expected).norm() / expected.norm();
      EXPECT_LT(rel, 1e-4) << "document " << i << (cut ? " (truncated)" : "");
      EXPECT_NEAR(capture->losses[i], loss, 1e-3 * loss) << "document " << i;
    }
  }
}

TEST(Gpt, SaveLoadAndGpt2ImportReproduceLogits) {
  for (bool tied : {true, false}) {
    SCOPED_TRACE(tied ? "tied head" : "untied head");
    const ModelConfig config = TinyGptConfig(tied);
    auto model = CreateModel(config, 7);
    TDA_ASSERT_OK(model);
    TempDir dir;
    TDA_ASSERT_OK((*model)->Save(dir.file("native"), TrainRecipe{}));
    auto loaded = LoadModel(dir.file("native"));
    TDA_ASSERT_OK(loaded);
    const Dataset& docs = testing::FortunesTrain(8, config.context_length);
    const Batch batch = docs.Rows(0, docs.size());
    auto want = (*model)->Predict(batch);
    TDA_ASSERT_OK(want);
    EXPECT_EQ((*loaded)->Predict(batch).value(), *want);
    EXPECT_EQ((*loaded)->Fingerprint(), (*model)->Fingerprint());

    // A Hugging Face GPT-2 file of the same weights: "transformer." prefix, Conv1D weights
    // stored in x out, the causal-mask buffers GPT-2 checkpoints carry.
    auto native = SafetensorsFile::Read(dir.file("native/model.safetensors"));
    TDA_ASSERT_OK(native);
    SafetensorsWriter hf;
    for (const std::string& name : (*native)->names()) {
      TensorView v = (*native)->Get(name).value();
      torch::Tensor t = torch::from_blob(const_cast<char*>(v.bytes.data()), v.shape);
      const bool conv1d =
          name.find(".weight") != std::string::npos &&
          (name.find("attn.c_") != std::string::npos || name.find("mlp.c_") != std::string::npos);
      if (conv1d) t = t.t();
      t = t.contiguous();
      hf.AddF32(name == "lm_head.weight" ? name : "transformer." + name, t.sizes().vec(),
                t.data_ptr<float>());
    }
    const std::vector<float> mask(
        static_cast<size_t>(config.context_length * config.context_length), 1.0f);
    hf.AddF32("transformer.h.0.attn.bias", {1, 1, config.context_length, config.context_length},
              mask.data());
    TDA_ASSERT_OK(hf.WriteAtomically(dir.file("hf.safetensors")));
    auto imported = ImportGpt2(dir.file("hf.safetensors"), config.heads);
    TDA_ASSERT_OK(imported);
    EXPECT_EQ((*imported)->config().tied_head, tied);
    EXPECT_EQ((*imported)->config().layers, config.layers);
    EXPECT_EQ((*imported)->config().mlp_width, config.mlp_width);
    auto got = (*imported)->Predict(batch);
    TDA_ASSERT_OK(got);
    EXPECT_LT((*got - *want).cwiseAbs().maxCoeff(), 1e-6);
    EXPECT_EQ((*imported)->Fingerprint(), (*model)->Fingerprint());
    EXPECT_THAT(ImportGpt2(dir.file("hf.safetensors"), 3),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("heads")));
  }
}

TEST(Gpt, TinyRecipeLearnsAndGeneratesDeterministically) {
  const ModelConfig config = TinyGptConfig(true);
  const Dataset& docs = testing::FortunesTrain(400, config.context_length);
  std::unique_ptr<Model> model = testing::TrainTinyGpt(config, docs, 3);
  ASSERT_NE(model, nullptr);
  TextSplitOptions options;
  options.context_length = config.context_length;
  options.limit = 200;
  auto held_out = LoadFortunes(kFortunesDefaultDir, Split::kTest, options);
  TDA_ASSERT_OK(held_out);
  auto eval = Evaluate(*model, *held_out);
  TDA_ASSERT_OK(eval);
  const double unigram = UnigramCrossEntropy(docs, *held_out, config.num_classes);
  std::cout << "tiny GPT held-out loss " << eval->mean_loss << " nats/byte, unigram " << unigram
            << "\n";
  EXPECT_LT(eval->mean_loss, std::log(257.0) - 1.0);  // far below an untrained model

  GenerateOptions gen;
  gen.max_tokens = 40;
  gen.seed = 3;
  auto a = Generate(*model, ByteTokenizer(), "The ", gen);
  auto b = Generate(*model, ByteTokenizer(), "The ", gen);
  TDA_ASSERT_OK(a);
  EXPECT_EQ(*a, *b);
  EXPECT_LE(a->size(), 40u);
  gen.temperature = 0;
  TDA_ASSERT_OK(Generate(*model, ByteTokenizer(), std::string(100, 'x'), gen));  // longer than the context
  EXPECT_THAT(model->Capture(docs.Rows(0, 1).WithOutputs(std::vector<int32_t>(48, 300).data())),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("target 300")));
}

// EK-FAC (true Fisher, one label drawn per token) against the exact damped Gauss-Newton
// influence on a GPT with 568 tracked parameters, at three dampings lambda = m x the mean
// EK-FAC eigenvalue. Measured (OMP_NUM_THREADS=1): Pearson 0.66 at m = 0.1, 0.85 at m = 1,
// 0.95 at m = 10. At small damping the Kronecker eigenbasis of the attention and MLP layers
// (positions share weights) and the missing cross-layer blocks limit the agreement; drawing
// 8 labels per token instead of 1 changed nothing (the sampling is not the limit), and the
// block-diagonal exact matrix agrees with the full one to 0.85-0.99. The check is at m = 1.
TEST(Gpt, EkfacAgreesWithExactInfluence) {
  const ModelConfig config = GptConfig(/*context_length=*/24, /*d_model=*/8, /*layers=*/1,
                                       /*heads=*/2, /*mlp_width=*/16, /*tied_head=*/true);
  const Dataset& all = testing::FortunesTrain(120, config.context_length);
  std::vector<int64_t> train_rows, query_rows;
  for (int64_t i = 0; i < all.size(); ++i) (i < 100 ? train_rows : query_rows).push_back(i);
  const Dataset train = all.Select(train_rows);
  const Dataset queries = all.Select(query_rows);
  std::unique_ptr<Model> model = testing::TrainTinyGpt(config, train, 20);
  ASSERT_NE(model, nullptr);
  const int64_t dim = model->layout().total();
  ASSERT_EQ(dim, 568);

  auto gn = GaussNewtonMatrix(*model, train);
  TDA_ASSERT_OK(gn);
  auto fitted = FitKroneckerFactors(*model, train, FitOptions{});
  TDA_ASSERT_OK(fitted);
  auto factors = std::make_shared<const KroneckerFactors>(std::move(*fitted));
  auto gradients = [&](const Dataset& data) {
    return PerSampleGradientColumns(model->Capture(data.Rows(0, data.size())).value(),
                                    model->layout());
  };
  const Eigen::MatrixXd train_grads = gradients(train), query_grads = gradients(queries);
  double eigen_sum = 0;
  for (const LayerFactors& f : factors->layers) eigen_sum += f.corrected.sum();
  double at_one = 0;
  for (double multiple : {0.1, 1.0, 10.0}) {
    const double lambda = multiple * eigen_sum / static_cast<double>(dim);
    auto exact = ExactPreconditioner::Create(*gn, lambda);
    TDA_ASSERT_OK(exact);
    Damping damping;
    damping.absolute = lambda;
    auto ekfac = KroneckerPreconditioner::Create(factors, Method::kEkfac, damping);
    TDA_ASSERT_OK(ekfac);
    const Eigen::MatrixXd want = train_grads.transpose() * *(*exact)->Apply(query_grads);
    const Eigen::MatrixXd got = train_grads.transpose() * *(*ekfac)->Apply(query_grads);
    double mean = 0;
    for (int64_t q = 0; q < want.cols(); ++q) mean += Pearson(got.col(q), want.col(q));
    mean /= static_cast<double>(want.cols());
    std::cout << "GPT D = " << dim << ", N = " << train.size() << ", " << want.cols()
              << " queries, lambda = " << multiple << " x mean EK-FAC eigenvalue: mean "
              << "Pearson(EK-FAC, exact) = " << mean << "\n";
    if (multiple == 1.0) at_one = mean;
  }
  EXPECT_GE(at_one, 0.8);
}

}  // namespace
}  // namespace tda
