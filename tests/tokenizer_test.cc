// Tokenizers (data/tokenizer.h) on every fortune of the shipped corpus, against independent
// references: byte-level BPE against tests/python/gpt2_bpe_reference.py (GPT-2's published
// algorithm in python3-regex, which runs the split patterns' lookahead natively) for vocab.json +
// merges.txt, a GPT-2 tokenizer.json and a Llama-3-style tokenizer.json, with special tokens in
// the text; SentencePiece models trained here with Debian's spm_train against
// python3-sentencepiece; the byte tokenizer against its free functions. Bad input is refused
// with the file (and line or entry) named.
#include "data/tokenizer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "data/bpe_tokenizer.h"
#include "data/byte_level_split.h"
#include "data/byte_tokenizer.h"
#include "data/fortunes.h"
#include "data/jsonl_corpus.h"
#include "data/text_document.h"
#include "data/token_cache.h"
#include "test_support.h"

namespace tda {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;
using testing::StatusIs;
using testing::TempDir;

// The Llama 3 split pattern, as its tokenizer.json spells it.
constexpr char kLlama3Pattern[] =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

std::vector<TextDocument> Fortunes() {
  absl::StatusOr<std::vector<TextDocument>> docs = ReadFortunes(kFortunesDefaultDir);
  EXPECT_TRUE(docs.ok()) << docs.status();
  EXPECT_GT(docs.value_or(std::vector<TextDocument>()).size(), 10000u);
  return docs.value_or(std::vector<TextDocument>());
}

std::string Script(const std::string& name) {
  const char* source = std::getenv("TDA_SOURCE_DIR");
  EXPECT_NE(source, nullptr) << "TDA_SOURCE_DIR is not set (ctest sets it)";
  return std::string(source == nullptr ? "." : source) + "/tests/python/" + name;
}

void RunCommand(const std::string& command) {
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
}

// One JSON value per line.
std::vector<json> ReadJsonLines(const std::string& path) {
  std::vector<json> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) lines.push_back(json::parse(line));
  return lines;
}

// Reports every index whose value differs, the first few in full; true when none does.
template <typename T>
void ExpectEveryFortuneEqual(const std::string& what, const std::vector<T>& ours,
                             const std::vector<T>& reference) {
  ASSERT_EQ(ours.size(), reference.size()) << what;
  std::vector<size_t> mismatches;
  for (size_t i = 0; i < ours.size(); ++i) {
    if (ours[i] == reference[i]) continue;
    if (mismatches.size() < 3) {
      ADD_FAILURE() << what << ": fortune " << i << ": tda " << json(ours[i]).dump()
                    << "\n reference " << json(reference[i]).dump();
    }
    mismatches.push_back(i);
  }
  EXPECT_TRUE(mismatches.empty()) << what << ": " << mismatches.size() << " of " << ours.size()
                                  << " fortunes differ, indexes " << json(mismatches).dump();
}

std::vector<std::vector<int32_t>> EncodeAll(const Tokenizer& tokenizer,
                                            const std::vector<std::string>& texts) {
  std::vector<std::vector<int32_t>> ids;
  for (const std::string& text : texts) {
    absl::StatusOr<std::vector<int32_t>> encoded = tokenizer.Encode(text);
    EXPECT_TRUE(encoded.ok()) << encoded.status();
    ids.push_back(encoded.value_or(std::vector<int32_t>()));
  }
  return ids;
}

std::vector<std::string> DecodeAll(const Tokenizer& tokenizer,
                                   const std::vector<std::vector<int32_t>>& ids) {
  std::vector<std::string> texts;
  for (const std::vector<int32_t>& one : ids) {
    absl::StatusOr<std::string> decoded = tokenizer.Decode(one);
    EXPECT_TRUE(decoded.ok()) << decoded.status();
    texts.push_back(decoded.value_or(""));
  }
  return texts;
}

std::vector<std::vector<int32_t>> ReferenceIds(const std::string& path) {
  std::vector<std::vector<int32_t>> ids;
  for (const json& line : ReadJsonLines(path)) ids.push_back(line.get<std::vector<int32_t>>());
  return ids;
}

std::vector<std::string> Texts(const std::vector<TextDocument>& docs) {
  std::vector<std::string> texts;
  for (const TextDocument& doc : docs) texts.push_back(doc.text);
  return texts;
}

// Writes `texts` as a JSONL corpus of {"text": ...} lines.
void WriteCorpus(const std::vector<std::string>& texts, const std::string& path) {
  std::vector<TextDocument> docs(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) docs[i].text = texts[i];
  ASSERT_TRUE(WriteJsonl(docs, path).ok());
}

TEST(TokenizerTest, ByteLevelBpeEqualsTheGpt2ReferenceOnEveryFortune) {
  std::vector<std::string> fortunes = Texts(Fortunes());
  // Special tokens inside text: neighbouring fortunes (every 20th pair) joined by each layout's
  // end-of-text tokens.
  std::vector<std::string> joined;
  for (size_t i = 0; i + 1 < fortunes.size(); i += 20) {
    joined.push_back(fortunes[i] + "<|endoftext|>" + fortunes[i + 1]);
    joined.push_back(fortunes[i] + "<|end_of_text|><|begin_of_text|>" + fortunes[i + 1]);
  }
  TempDir dir;
  WriteCorpus(fortunes, dir.file("fortunes.jsonl"));
  WriteCorpus(joined, dir.file("joined.jsonl"));
  RunCommand("/usr/bin/python3 " + Script("gpt2_bpe_reference.py") + " " + dir.path() + " " +
             dir.file("fortunes.jsonl") + " " + dir.file("joined.jsonl"));

  struct Layout {
    std::string dir, reference, pattern;
  };
  for (const Layout& layout :
       {Layout{"gpt2", "gpt2", kGpt2SplitPattern}, Layout{"gpt2-json", "gpt2", kGpt2SplitPattern},
        Layout{"llama3-json", "llama3", kLlama3Pattern}}) {
    SCOPED_TRACE(layout.dir);
    absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = LoadTokenizer(dir.file(layout.dir));
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    // The pieces of the split pattern (RE2 with the lookahead in code) equal python3-regex's.
    absl::StatusOr<std::unique_ptr<ByteLevelSplitter>> splitter =
        ByteLevelSplitter::Create(layout.pattern);
    ASSERT_TRUE(splitter.ok()) << splitter.status();
    std::vector<std::vector<std::string>> pieces;
    for (const std::string& text : fortunes) {
      const std::vector<std::string_view> split = (*splitter)->Split(text);
      pieces.emplace_back(split.begin(), split.end());
    }
    std::vector<std::vector<std::string>> reference_pieces;
    for (const json& line :
         ReadJsonLines(dir.file("pieces-" + layout.reference + "-fortunes.jsonl"))) {
      reference_pieces.push_back(line.get<std::vector<std::string>>());
    }
    ExpectEveryFortuneEqual(layout.dir + " pieces", pieces, reference_pieces);
    // The emulated lookahead is exercised: a whitespace piece whose run went on into the next.
    int64_t gave_up = 0;
    for (const std::vector<std::string>& split : pieces) {
      for (size_t k = 0; k + 1 < split.size(); ++k) {
        const auto whitespace = [](const std::string& piece) {
          return piece.find_first_not_of(" \t\n\r\v\f") == std::string::npos;
        };
        if (whitespace(split[k]) && std::isspace(static_cast<unsigned char>(split[k + 1][0]))) {
          ++gave_up;
          break;
        }
      }
    }
    EXPECT_GT(gave_up, 1000) << "fortunes where a whitespace run gave up its last character";

    for (const auto& [name, texts] :
         {std::pair("fortunes", &fortunes), std::pair("joined", &joined)}) {
      const std::vector<std::vector<int32_t>> ids = EncodeAll(**tokenizer, *texts);
      ExpectEveryFortuneEqual(
          layout.dir + " ids of " + name, ids,
          ReferenceIds(dir.file("ids-" + layout.reference + "-" + name + ".jsonl")));
      ExpectEveryFortuneEqual(layout.dir + " decoded " + name, DecodeAll(**tokenizer, ids), *texts);
    }
  }
  // Special tokens from the files: GPT-2's defaults, Llama 3's TemplateProcessing.
  const json vocab = json::parse(testing::ReadText(dir.file("gpt2/vocab.json")));
  const auto end_of_text = vocab.at("<|endoftext|>").get<int32_t>();
  absl::StatusOr<std::unique_ptr<Tokenizer>> gpt2 = LoadTokenizer(dir.file("gpt2"));
  ASSERT_TRUE(gpt2.ok());
  EXPECT_EQ((*gpt2)->vocabulary_size(), static_cast<int64_t>(vocab.size()));
  EXPECT_EQ((*gpt2)->eos_id(), end_of_text);
  EXPECT_EQ((*gpt2)->bos_id(), end_of_text);
  EXPECT_FALSE((*gpt2)->add_bos());
  absl::StatusOr<std::unique_ptr<Tokenizer>> llama3 = LoadTokenizer(dir.file("llama3-json"));
  ASSERT_TRUE(llama3.ok());
  // The same merges and vocabulary without <|endoftext|>, then <|begin_of_text|>, <|end_of_text|>.
  EXPECT_EQ((*llama3)->vocabulary_size(), static_cast<int64_t>(vocab.size()) + 1);
  EXPECT_EQ((*llama3)->bos_id(), end_of_text);
  EXPECT_TRUE((*llama3)->add_bos());
  EXPECT_NE((*gpt2)->name(), (*llama3)->name());
  const auto past_the_end = static_cast<int32_t>(vocab.size());
  EXPECT_THAT(
      (*gpt2)->Decode({past_the_end}),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr(absl::StrCat("token id ", past_the_end, " is not in the vocabulary"))));

  // tokenizer_config.json: its bos / eos tokens and add_bos_token override the defaults.
  testing::WriteText(dir.file("gpt2/tokenizer_config.json"),
                     R"({"bos_token": {"content": "<|endoftext|>"}, "eos_token": "<|endoftext|>",
                         "add_bos_token": true})");
  absl::StatusOr<std::unique_ptr<Tokenizer>> configured = LoadTokenizer(dir.file("gpt2"));
  ASSERT_TRUE(configured.ok()) << configured.status();
  EXPECT_TRUE((*configured)->add_bos());
  EXPECT_EQ((*configured)->bos_id(), end_of_text);
  testing::WriteText(dir.file("gpt2/tokenizer_config.json"), R"({"eos_token": "<|im_end|>"})");
  EXPECT_THAT(LoadTokenizer(dir.file("gpt2")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("vocab.json: has no special token '<|im_end|>'")));
}

// Trains a SentencePiece model of `type` on the fortunes' lines with Debian's spm_train and
// places it as `dir`/tokenizer.model.
void TrainSentencePiece(const std::string& train_text, const std::string& type,
                        const std::string& dir) {
  std::filesystem::create_directories(dir);
  RunCommand("spm_train --input=" + train_text + " --model_prefix=" + dir +
             "/spm --model_type=" + type +
             " --vocab_size=2000 --character_coverage=1.0 --input_sentence_size=20000"
             " --minloglevel=2 > " +
             dir + "/train.log 2>&1");
  std::filesystem::rename(dir + "/spm.model", dir + "/tokenizer.model");
}

TEST(TokenizerTest, SentencePieceEqualsPythonSentencePieceOnEveryFortune) {
  const std::vector<std::string> fortunes = Texts(Fortunes());
  TempDir dir;
  WriteCorpus(fortunes, dir.file("fortunes.jsonl"));
  {
    std::ofstream lines(dir.file("train.txt"));
    for (const std::string& text : fortunes) lines << text << "\n";
  }
  for (const std::string type : {"unigram", "bpe"}) {
    SCOPED_TRACE(type);
    const std::string model_dir = dir.file(type);
    TrainSentencePiece(dir.file("train.txt"), type, model_dir);
    RunCommand("/usr/bin/python3 " + Script("sentencepiece_reference.py") + " " + model_dir +
               "/tokenizer.model " + dir.file("fortunes.jsonl") + " " + model_dir +
               "/reference.jsonl");
    absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = LoadTokenizer(model_dir);
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    EXPECT_EQ((*tokenizer)->vocabulary_size(), 2000);
    EXPECT_EQ((*tokenizer)->bos_id(), 1);  // spm_train's defaults: <unk> 0, <s> 1, </s> 2
    EXPECT_EQ((*tokenizer)->eos_id(), 2);
    EXPECT_TRUE((*tokenizer)->add_bos());
    std::vector<std::vector<int32_t>> reference_ids;
    std::vector<std::string> reference_decoded;
    for (const json& line : ReadJsonLines(model_dir + "/reference.jsonl")) {
      reference_ids.push_back(line.at("ids").get<std::vector<int32_t>>());
      reference_decoded.push_back(line.at("decoded").get<std::string>());
    }
    const std::vector<std::vector<int32_t>> ids = EncodeAll(**tokenizer, fortunes);
    ExpectEveryFortuneEqual(type + " ids", ids, reference_ids);
    ExpectEveryFortuneEqual(type + " decoded", DecodeAll(**tokenizer, ids), reference_decoded);
  }
  // tokenizer_config.json over the model's defaults; a bos_token the model lacks is named.
  testing::WriteText(dir.file("bpe/tokenizer_config.json"),
                     R"({"add_bos_token": false, "eos_token": "<unk>"})");
  absl::StatusOr<std::unique_ptr<Tokenizer>> configured = LoadTokenizer(dir.file("bpe"));
  ASSERT_TRUE(configured.ok()) << configured.status();
  EXPECT_FALSE((*configured)->add_bos());
  EXPECT_EQ((*configured)->eos_id(), 0);
  testing::WriteText(dir.file("bpe/tokenizer_config.json"), R"({"bos_token": "<|begin|>"})");
  EXPECT_THAT(LoadTokenizer(dir.file("bpe")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("tokenizer_config.json: bos_token '<|begin|>' is not a token")));
  // A damaged model: its first half.
  const std::string model = testing::ReadText(dir.file("unigram/tokenizer.model"));
  testing::WriteText(dir.file("unigram/tokenizer.model"), model.substr(0, model.size() / 2));
  EXPECT_THAT(
      LoadTokenizer(dir.file("unigram")),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr(dir.file("unigram/tokenizer.model") + ": not a SentencePiece model")));
}

TEST(TokenizerTest, ByteTokenizerIsItsFreeFunctions) {
  const ByteTokenizer tokenizer;
  const std::vector<std::string> fortunes = Texts(Fortunes());
  std::vector<std::vector<int32_t>> expected;
  for (const std::string& text : fortunes) expected.push_back(EncodeBytes(text));
  const std::vector<std::vector<int32_t>> ids = EncodeAll(tokenizer, fortunes);
  ExpectEveryFortuneEqual("byte ids", ids, expected);
  ExpectEveryFortuneEqual("byte decoded", DecodeAll(tokenizer, ids), fortunes);
  EXPECT_EQ(tokenizer.name(), "byte");
  EXPECT_EQ(tokenizer.vocabulary_size(), kByteVocabulary);
  EXPECT_EQ(tokenizer.bos_id(), kEndOfDocument);
  EXPECT_THAT(tokenizer.Decode({65, 257}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("token id 257")));
}

TEST(TokenizerTest, MissingFilesAreNamed) {
  TempDir dir;
  EXPECT_THAT(LoadTokenizer(dir.file("absent")),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(dir.file("absent"))));
  EXPECT_THAT(LoadTokenizer(dir.path()),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr("none of tokenizer.model (SentencePiece), tokenizer.json")));
  testing::WriteText(dir.file("vocab.json"), "{}");
  EXPECT_THAT(
      LoadTokenizer(dir.path()),
      StatusIs(absl::StatusCode::kNotFound, HasSubstr(dir.file("merges.txt") + " is missing")));
  // A directory where the model file should be: unreadable.
  std::filesystem::create_directory(dir.file("tokenizer.model"));
  const absl::StatusOr<std::unique_ptr<Tokenizer>> unreadable = LoadTokenizer(dir.path());
  EXPECT_FALSE(unreadable.ok());
  EXPECT_THAT(std::string(unreadable.status().message()), HasSubstr(dir.file("tokenizer.model")));
  std::filesystem::remove(dir.file("tokenizer.model"));
  testing::WriteText(dir.file("tokenizer.model"), "not a protobuf \x01\x02\xff");
  EXPECT_THAT(LoadTokenizer(dir.path()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(dir.file("tokenizer.model") + ": not a SentencePiece model")));
}

// A tokenizer.json of the 256 byte tokens and `merges`, with `pre_tokenizer` and `model` fields
// laid over the defaults.
json ByteLevelTokenizerJson(const json& pre_tokenizer, const json& model_fields,
                            const json& merges = json::array()) {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[ByteToUnicode(static_cast<unsigned char>(b))] = b;
  json model = {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}};
  model.update(model_fields);
  return {{"model", model}, {"pre_tokenizer", pre_tokenizer}, {"added_tokens", json::array()}};
}

TEST(TokenizerTest, MalformedOrUnsupportedFilesAreRefusedByName) {
  TempDir dir;
  const std::string path = dir.file("tokenizer.json");
  const json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}};
  auto load_json = [&](const std::string& text) {
    testing::WriteText(path, text);
    return LoadTokenizer(dir.path());
  };
  auto refused = [&](const std::string& what) {
    return StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(path + ": " + what));
  };
  EXPECT_THAT(load_json(R"({"model": {"type": "BPE", "vocab": {)"), refused("not valid JSON"));
  EXPECT_THAT(load_json(R"({"model": {"type": "BPE", "vocab": [], "merges": []},
                             "pre_tokenizer": {"type": "ByteLevel"}})"),
              refused("model.vocab is not an object"));
  EXPECT_THAT(load_json(ByteLevelTokenizerJson(byte_level, {{"type", "Unigram"}}).dump()),
              refused("model.type 'Unigram' is not supported"));
  EXPECT_THAT(load_json(ByteLevelTokenizerJson(byte_level, {{"byte_fallback", true}}).dump()),
              refused("model.byte_fallback is not supported"));
  EXPECT_THAT(load_json(ByteLevelTokenizerJson({{"type", "Metaspace"}}, json::object()).dump()),
              refused("the pre-tokenizer 'Metaspace' is not supported"));
  EXPECT_THAT(
      load_json(ByteLevelTokenizerJson(byte_level, json::object(), json::array({"a b c"})).dump()),
      refused("model.merges[0]: \"a b c\" is not"));
  EXPECT_THAT(
      load_json(ByteLevelTokenizerJson(byte_level, json::object(), json::array({"a q"})).dump()),
      refused("model.merges[0]: merge 'a q': 'aq' is not in the vocabulary"));
  // A split pattern with a lookaround RE2 cannot run and tda does not implement: named.
  const json split = {{"type", "Sequence"},
                      {"pretokenizers",
                       {{{"type", "Split"},
                         {"pattern", {{"Regex", "(?<=a)b|\\s+"}}},
                         {"behavior", "Isolated"},
                         {"invert", false}},
                        {{"type", "ByteLevel"}, {"use_regex", false}}}}};
  EXPECT_THAT(load_json(ByteLevelTokenizerJson(split, json::object()).dump()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("the split pattern '(?<=a)b|\\s+' uses a lookaround")));
  // The byte-level tokenizer itself works (every byte is a token).
  absl::StatusOr<std::unique_ptr<Tokenizer>> bytes =
      load_json(ByteLevelTokenizerJson(byte_level, json::object()).dump());
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_EQ((*bytes)->Encode("a b").value(), (std::vector<int32_t>{'a', ' ', 'b'}));
  // Bad lines of merges.txt and bad config files are named with their line or field.
  std::filesystem::remove(path);
  json vocab = ByteLevelTokenizerJson(byte_level, json::object())["model"]["vocab"];
  vocab["<|endoftext|>"] = 256;
  testing::WriteText(dir.file("vocab.json"), vocab.dump());
  testing::WriteText(dir.file("merges.txt"), "#version: 0.2\na b\nab\n");
  EXPECT_THAT(LoadTokenizer(dir.path()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(dir.file("merges.txt") + " line 3: 'ab' is not \"a b\"")));
  testing::WriteText(dir.file("merges.txt"), "#version: 0.2\n");
  testing::WriteText(dir.file("tokenizer_config.json"), "{\"add_bos_token\": tru");
  EXPECT_THAT(LoadTokenizer(dir.path()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(dir.file("tokenizer_config.json") + ": not valid JSON")));
}

}  // namespace
}  // namespace tda
