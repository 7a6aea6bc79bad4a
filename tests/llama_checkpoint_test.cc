// Hugging Face model directories: tda's llama and gpt kinds against an independent PyTorch
// implementation of the equations (tests/python/llama_reference.py) on tiny random checkpoints
// of every supported variant; import to a tda model directory and reload; export then import
// round-trips; a bf16 checkpoint held bf16 computing exactly what its float32 widening does;
// and every kind of bad input refused with a clear error and nothing written.
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/safetensors.h"
#include "data/byte_tokenizer.h"
#include "data/fortunes.h"
#include "grad/projection.h"
#include "model/decoder_model.h"
#include "model/hf_checkpoint.h"
#include "model/hf_export.h"
#include "model/model.h"
#include "model/torch_model.h"
#include "test_support.h"

namespace tda {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::ReadText;
using testing::StatusIs;
using testing::TempDir;
using testing::WriteText;

// Two rows of 12 tokens below the reference checkpoints' vocabulary of 97.
const std::vector<std::vector<int64_t>> kTokens = {{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12},
                                                   {5, 4, 3, 2, 1, 0, 96, 95, 94, 93, 92, 91}};

std::string TokensArgument() {
  std::string out;
  for (const auto& row : kTokens) {
    if (!out.empty()) out += ";";
    for (size_t i = 0; i < row.size(); ++i) absl::StrAppend(&out, i ? "," : "", row[i]);
  }
  return out;
}

std::string ReferenceScript() {
  const char* root = std::getenv("TDA_SOURCE_DIR");
  return std::string(root != nullptr ? root : ".") + "/tests/python/llama_reference.py";
}

void RunReference(const std::string& arguments) {
  const std::string command = "/usr/bin/python3 " + ReferenceScript() + " " + arguments;
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
}

// The reference's logits file as a float64 tensor (rows x length x vocabulary).
torch::Tensor ReadLogits(const std::string& path) {
  const json in = json::parse(ReadText(path));
  return torch::tensor(in["logits"].get<std::vector<double>>(), torch::kFloat64)
      .view(in["shape"].get<std::vector<int64_t>>());
}

torch::Tensor ModelLogits(const Model& model) {
  const auto* torch_model = dynamic_cast<const TorchModel*>(&model);
  EXPECT_NE(torch_model, nullptr);
  torch::Tensor tokens = torch::empty({2, 12}, torch::kInt64);
  for (int64_t r = 0; r < 2; ++r) {
    for (int64_t t = 0; t < 12; ++t) tokens[r][t] = kTokens[r][t];
  }
  torch::NoGradGuard no_grad;
  return torch_model->Logits(tokens).to(torch::kFloat64);
}

// max |got - want| / max |want|.
double RelativeError(const torch::Tensor& got, const torch::Tensor& want) {
  return (got - want).abs().max().item<double>() / want.abs().max().item<double>();
}

bool Exists(const std::string& path) { return fs::exists(path); }

TEST(LlamaCheckpoint, EveryVariantMatchesTheReferenceLogitsAndImports) {
  TempDir dir;
  RunReference("all " + dir.path() + " '" + TokensArgument() + "'");
  // One variant carries a real tokenizer (a SentencePiece model of 90 pieces, within the
  // checkpoints' vocabulary of 97, fitted on the startrek fortunes): import must copy it.
  const std::string spm = "spm_train --input=" + std::string(kFortunesDefaultDir) +
                          "/startrek --model_prefix=" + dir.file("llama_gqa_tied/tokenizer") +
                          " --vocab_size=90 --hard_vocab_limit=false --minloglevel=2 >/dev/null 2>&1";
  ASSERT_EQ(std::system(spm.c_str()), 0) << spm;
  TempDir imports;
  int variants = 0;
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    if (!entry.is_directory()) continue;
    const std::string name = entry.path().filename().string();
    SCOPED_TRACE(name);
    ++variants;
    const torch::Tensor want = ReadLogits(dir.file(name + ".logits.json"));
    auto model = LoadHfCheckpoint(entry.path().string());
    TDA_ASSERT_OK(model);
    const double error = RelativeError(ModelLogits(**model), want);
    std::cout << "variant " << name << ": max relative logit error " << error << "\n";
    EXPECT_LT(error, 1e-4);

    // tda import --hf: a tda model directory that reloads to the same logits.
    const std::string imported = imports.file(name);
    TDA_ASSERT_OK(ImportHfCheckpoint(entry.path().string(), imported).status());
    auto reloaded = LoadModel(imported);
    TDA_ASSERT_OK(reloaded);
    EXPECT_TRUE(torch::equal(ModelLogits(**reloaded), ModelLogits(**model)));
    EXPECT_EQ((*reloaded)->Fingerprint(), (*model)->Fingerprint());
    EXPECT_EQ(Exists(imported + "/tokenizer.model"), name == "llama_gqa_tied");
  }
  EXPECT_EQ(variants, 8);
}

TEST(LlamaCheckpoint, ExportThenImportRoundTripsAndTheReferenceLoadsTheExport) {
  TempDir dir;
  ModelConfig llama = LlamaConfig(/*vocabulary=*/97, /*context_length=*/16, /*d_model=*/16,
                                  /*layers=*/2, /*heads=*/4, /*kv_heads=*/2, /*mlp_width=*/24,
                                  /*tied_head=*/false);
  llama.hf_model_type = "qwen2";
  llama.qkv_bias = true;
  llama.rope_scaling = {8.0, 1.0, 4.0, 32};
  ModelConfig gpt = GptConfig(/*context_length=*/16, /*d_model=*/16, /*layers=*/2, /*heads=*/2,
                              /*mlp_width=*/32, /*tied_head=*/true);
  for (const ModelConfig& config : {llama, gpt}) {
    SCOPED_TRACE(config.kind);
    auto model = CreateModel(config, 3);
    TDA_ASSERT_OK(model);
    const std::string out = dir.file("hf-" + config.kind);
    TDA_ASSERT_OK(ExportHfCheckpoint(**model, out));
    auto imported = LoadHfCheckpoint(out);
    TDA_ASSERT_OK(imported);
    EXPECT_TRUE(torch::equal(ModelLogits(**imported), ModelLogits(**model)));
    EXPECT_EQ((*imported)->Fingerprint(), (*model)->Fingerprint());
    EXPECT_EQ((*imported)->config().hf_model_type, config.hf_model_type);
    // The reference implementation reads the export and agrees.
    RunReference(absl::StrCat("logits ", out, " '", TokensArgument(), "' ", out, ".json"));
    const double error = RelativeError(ModelLogits(**model), ReadLogits(out + ".json"));
    std::cout << config.kind << " export read by the reference: max relative logit error " << error
              << "\n";
    EXPECT_LT(error, 1e-4);
    // A second export replaces the first; a directory it did not write is refused untouched.
    EXPECT_TRUE((ExportHfCheckpoint(**model, out)).ok());
  }
  // Biases a family's config cannot express are refused, naming them.
  ModelConfig biased_mistral = llama;
  biased_mistral.hf_model_type = "mistral";
  auto mistral = CreateModel(biased_mistral, 3);
  TDA_ASSERT_OK(mistral);
  EXPECT_THAT(ExportHfCheckpoint(**mistral, dir.file("mistral")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("a mistral config cannot express q/k/v biases on")));
  EXPECT_FALSE(Exists(dir.file("mistral")));
  fs::create_directories(dir.file("theirs"));
  WriteText(dir.file("theirs/notes.txt"), "mine\n");
  auto model = CreateModel(gpt, 3);
  TDA_ASSERT_OK(model);
  EXPECT_THAT(ExportHfCheckpoint(**model, dir.file("theirs")),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("not written by tda")));
  EXPECT_EQ(ReadText(dir.file("theirs/notes.txt")), "mine\n");
  EXPECT_FALSE(Exists(dir.file("theirs/config.json")));
}

// The export in `hf` with its tensors rounded to bf16, written twice: stored BF16 in `bf16_dir`
// and the same values stored F32 in `f32_dir`.
void WriteBf16Twins(const std::string& hf, const std::string& bf16_dir,
                    const std::string& f32_dir) {
  auto file = SafetensorsFile::Read(hf + "/model.safetensors");
  TDA_ASSERT_OK(file);
  SafetensorsWriter bf16, f32;
  for (const std::string& name : (*file)->names()) {
    TensorView v = (*file)->Get(name).value();
    ASSERT_EQ(v.dtype, DType::kF32);
    const torch::Tensor rounded =
        torch::from_blob(const_cast<char*>(v.bytes.data()), v.shape, torch::kFloat32)
            .to(torch::kBFloat16);
    bf16.Add(name, DType::kBF16, v.shape, rounded.data_ptr());
    const torch::Tensor widened = rounded.to(torch::kFloat32);
    f32.AddF32(name, v.shape, widened.data_ptr<float>());
  }
  for (const auto& [dir, writer] :
       {std::make_pair(bf16_dir, &bf16), std::make_pair(f32_dir, &f32)}) {
    fs::create_directories(dir);
    TDA_ASSERT_OK(writer->WriteAtomically(dir + "/model.safetensors"));
    WriteText(dir + "/config.json", ReadText(hf + "/config.json"));
  }
}

// Bytes LoadHfCheckpoint needs for `dir`'s model.safetensors: the tensors as stored plus the
// parameters as held (matrices 2 bytes each when `bf16_matrices`, everything else 4).
int64_t LoadBytes(const std::string& dir, bool bf16_matrices) {
  auto table = ReadSafetensorsTable(dir + "/model.safetensors");
  EXPECT_TRUE(table.ok());
  int64_t bytes = 0;
  for (const auto& [name, info] : *table) {
    const int64_t numel = info.bytes() / static_cast<int64_t>(DTypeSize(info.dtype));
    bytes += info.bytes() + numel * (bf16_matrices && info.shape.size() == 2 ? 2 : 4);
  }
  return bytes;
}

const DecoderModel& Decoder(const Model& model) { return dynamic_cast<const DecoderModel&>(model); }

// A bf16 checkpoint of `config` (random weights) against its float32 widening.
void ExpectBf16HeldExactly(const ModelConfig& config, const std::string& matrix,
                           const std::string& vector) {
  TempDir dir;
  auto original = CreateModel(config, 7);
  TDA_ASSERT_OK(original);
  TDA_ASSERT_OK(ExportHfCheckpoint(**original, dir.file("export")));
  WriteBf16Twins(dir.file("export"), dir.file("bf16"), dir.file("f32"));
  auto bf16 = LoadHfCheckpoint(dir.file("bf16"));
  auto f32 = LoadHfCheckpoint(dir.file("f32"));
  TDA_ASSERT_OK(bf16);
  TDA_ASSERT_OK(f32);
  EXPECT_EQ(Decoder(**bf16).matrix_dtype(), torch::kBFloat16);
  EXPECT_EQ(Decoder(**f32).matrix_dtype(), torch::kFloat32);
  EXPECT_EQ(HeldMatrixDType(**bf16), "bf16");  // what tda import prints

  // Real text (byte ids of fortunes): the same probabilities, captures and projected
  // per-sample gradients, bit for bit.
  const Batch batch = testing::FortunesTrain(4, 32).Rows(0, 4);
  auto p_bf16 = (*bf16)->Predict(batch);
  auto p_f32 = (*f32)->Predict(batch);
  TDA_ASSERT_OK(p_bf16);
  TDA_ASSERT_OK(p_f32);
  EXPECT_TRUE(*p_bf16 == *p_f32);
  auto c_bf16 = (*bf16)->Capture(batch);
  auto c_f32 = (*f32)->Capture(batch);
  TDA_ASSERT_OK(c_bf16);
  TDA_ASSERT_OK(c_f32);
  EXPECT_EQ(c_bf16->losses, c_f32->losses);
  ASSERT_EQ(c_bf16->layers.size(), c_f32->layers.size());
  for (size_t l = 0; l < c_f32->layers.size(); ++l) {
    EXPECT_TRUE(c_bf16->layers[l].a == c_f32->layers[l].a) << "layer " << l;
    EXPECT_TRUE(c_bf16->layers[l].g == c_f32->layers[l].g) << "layer " << l;
  }
  const Projection projection((*f32)->layout(), 8, 0);
  const RowMatrixXf rows = projection.ProjectCapture(*c_f32);
  EXPECT_TRUE(projection.ProjectCapture(*c_bf16) == rows);
  EXPECT_GT(rows.norm(), 0);

  // Imported, it stays bf16 on disk (half the bytes) and in memory.
  TDA_ASSERT_OK(ImportHfCheckpoint(dir.file("bf16"), dir.file("imported")).status());
  auto stored = ReadSafetensorsTable(dir.file("imported/model.safetensors"));
  TDA_ASSERT_OK(stored);
  EXPECT_EQ(stored->at(matrix).dtype, DType::kBF16);
  EXPECT_EQ(stored->at(vector).dtype, DType::kF32);
  auto reloaded = LoadModel(dir.file("imported"));
  TDA_ASSERT_OK(reloaded);
  EXPECT_EQ(Decoder(**reloaded).matrix_dtype(), torch::kBFloat16);
  EXPECT_TRUE(*(*reloaded)->Predict(batch) == *p_f32);

  // Training needs float32 master weights: asking for the parameters widens the model in place.
  EXPECT_EQ(dynamic_cast<TorchModel&>(**bf16).TrainableParameters()[0].scalar_type(),
            torch::kFloat32);
  EXPECT_EQ(Decoder(**bf16).matrix_dtype(), torch::kFloat32);
  EXPECT_TRUE(*(*bf16)->Predict(batch) == *p_f32);

  // The memory check counts what the load allocates: bf16 matrices, f32 vectors, the file.
  for (const bool bf16_matrices : {true, false}) {
    const std::string source = dir.file(bf16_matrices ? "bf16" : "f32");
    SCOPED_TRACE(source);
    HfLoadOptions exact;
    exact.available_memory_bytes = LoadBytes(source, bf16_matrices);
    EXPECT_TRUE(LoadHfCheckpoint(source, exact).ok());
    HfLoadOptions short_by_one;
    short_by_one.available_memory_bytes = exact.available_memory_bytes - 1;
    EXPECT_THAT(
        LoadHfCheckpoint(source, short_by_one),
        StatusIs(
            absl::StatusCode::kResourceExhausted,
            AllOf(HasSubstr(absl::StrCat("loading needs ", exact.available_memory_bytes, " bytes")),
                  HasSubstr(bf16_matrices ? "weight matrices as bf16"
                                          : "weight matrices as float32"))));
  }
}

TEST(LlamaCheckpoint, Bf16CheckpointStaysBf16AndComputesExactlyWhatItsF32WideningDoes) {
  {
    SCOPED_TRACE("llama, untied head");
    ExpectBf16HeldExactly(LlamaConfig(kByteVocabulary, /*context_length=*/32, /*d_model=*/32,
                                      /*layers=*/2, /*heads=*/4, /*kv_heads=*/2,
                                      /*mlp_width=*/48, /*tied_head=*/false),
                          "model.layers.1.mlp.up_proj.weight", "model.norm.weight");
  }
  SCOPED_TRACE("gpt2, tied head, Conv1D weights transposed on load");
  ExpectBf16HeldExactly(GptConfig(/*context_length=*/32, /*d_model=*/32, /*layers=*/2,
                                  /*heads=*/2, /*mlp_width=*/64, /*tied_head=*/true),
                        "h.1.mlp.c_fc.weight", "ln_f.weight");
}

// A valid Hugging Face llama directory written by tda's export, to be damaged by each case.
class BadCheckpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    ModelConfig config = LlamaConfig(97, 16, 16, 2, 4, 2, 24, /*tied_head=*/true);
    auto model = CreateModel(config, 5);
    TDA_ASSERT_OK(model);
    TDA_ASSERT_OK(ExportHfCheckpoint(**model, hf()));
  }
  std::string hf() const { return dir_.file("hf"); }
  std::string out() const { return dir_.file("out"); }

  void EditConfig(const std::function<void(json&)>& edit) {
    json config = json::parse(ReadText(hf() + "/config.json"));
    edit(config);
    WriteText(hf() + "/config.json", config.dump());
  }
  // Rewrites model.safetensors with `edit` applied to its tensors (name -> float32 tensor).
  void EditWeights(const std::function<void(std::map<std::string, torch::Tensor>&)>& edit) {
    auto file = SafetensorsFile::Read(hf() + "/model.safetensors");
    TDA_ASSERT_OK(file);
    std::map<std::string, torch::Tensor> tensors;
    for (const std::string& name : (*file)->names()) {
      TensorView v = (*file)->Get(name).value();
      tensors[name] =
          torch::from_blob(const_cast<char*>(v.bytes.data()), v.shape, torch::kFloat32).clone();
    }
    edit(tensors);
    SafetensorsWriter writer;
    for (auto& [name, t] : tensors) {
      torch::Tensor c = t.contiguous();
      writer.AddF32(name, c.sizes().vec(), c.data_ptr<float>());
    }
    TDA_ASSERT_OK(writer.WriteAtomically(hf() + "/model.safetensors"));
  }
  // Imports and expects `matcher` on the error, with nothing written.
  template <typename Matcher>
  void ExpectRefused(const Matcher& matcher, const HfLoadOptions& options = {}) {
    auto imported = ImportHfCheckpoint(hf(), out(), options);
    EXPECT_THAT(imported, matcher);
    if (!imported.ok()) std::cout << "refused: " << imported.status().message() << "\n";
    EXPECT_FALSE(Exists(out()));
    EXPECT_FALSE(Exists(out() + ".tda-import-tmp"));
  }

 private:
  TempDir dir_;
};

TEST_F(BadCheckpoint, UnknownModelTypeIsNamed) {
  EditConfig([](json& c) { c["model_type"] = "bert"; });
  ExpectRefused(StatusIs(absl::StatusCode::kInvalidArgument,
                         AllOf(HasSubstr("config.json"), HasSubstr("model_type 'bert'"),
                               HasSubstr("llama, mistral, qwen2, gpt2"))));
}

TEST_F(BadCheckpoint, UnsupportedRopeScalingIsNamed) {
  EditConfig([](json& c) { c["rope_scaling"] = {{"type", "yarn"}, {"factor", 4.0}}; });
  ExpectRefused(StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("rope_scaling type 'yarn' is not supported")));
}

TEST_F(BadCheckpoint, MissingUnexpectedAndMisshapedTensorsAreAllNamed) {
  EditWeights([](std::map<std::string, torch::Tensor>& t) {
    t.erase("model.norm.weight");
    t["model.layers.1.mlp.up_proj.weight"] = torch::zeros({23, 16});
    t["model.layers.0.self_attn.q_norm.weight"] = torch::zeros({4});
  });
  ExpectRefused(StatusIs(
      absl::StatusCode::kInvalidArgument,
      AllOf(HasSubstr("missing 1: model.norm.weight [16]"),
            HasSubstr("unexpected 1: model.layers.0.self_attn.q_norm.weight [4]"),
            HasSubstr("model.layers.1.mlp.up_proj.weight is [23, 16] in the checkpoint, the "
                      "config needs [24, 16]"))));
}

TEST_F(BadCheckpoint, ShardedIndexNamingAMissingShardIsNamed) {
  json index = {{"metadata", json::object()}, {"weight_map", json::object()}};
  auto file = SafetensorsFile::Read(hf() + "/model.safetensors");
  TDA_ASSERT_OK(file);
  for (const std::string& name : (*file)->names()) {
    index["weight_map"][name] = name == "lm_head.weight" || name == "model.norm.weight"
                                    ? "model-00002-of-00002.safetensors"
                                    : "model-00001-of-00002.safetensors";
  }
  fs::rename(hf() + "/model.safetensors", hf() + "/model-00001-of-00002.safetensors");
  WriteText(hf() + "/model.safetensors.index.json", index.dump());
  ExpectRefused(StatusIs(absl::StatusCode::kNotFound,
                         HasSubstr("names shard model-00002-of-00002.safetensors")));
}

TEST_F(BadCheckpoint, CheckpointLargerThanMemoryIsRefusedWithTheSizes) {
  HfLoadOptions small;
  small.available_memory_bytes = 10000;
  ExpectRefused(StatusIs(absl::StatusCode::kResourceExhausted,
                         AllOf(HasSubstr("bytes of tensors as stored"),
                               HasSubstr("more than the 10000 bytes of memory available"))),
                small);
  // The real figure: MemAvailable of /proc/meminfo admits this tiny checkpoint.
  EXPECT_TRUE((ImportHfCheckpoint(hf(), out()).status()).ok());
}

TEST_F(BadCheckpoint, ExistingOutputIsNotOverwritten) {
  fs::create_directories(out());
  WriteText(out() + "/keep.txt", "x");
  EXPECT_THAT(ImportHfCheckpoint(hf(), out()),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("not empty")));
  EXPECT_EQ(ReadText(out() + "/keep.txt"), "x");
}

}  // namespace
}  // namespace tda
