// Tokenizer: text <-> token ids, one interface for the byte tokenizer (byte_tokenizer.h),
// SentencePiece models (sentencepiece_tokenizer.h) and byte-level BPE (bpe_tokenizer.h), and
// LoadTokenizer, which reads a Hugging Face model directory's tokenizer files.
//
// Encode gives the ids of the text alone: no BOS or EOS is added (callers add bos_id() when
// add_bos() says so; eos_id() ends a document). Decode(Encode(text)) == text for the
// byte-level tokenizers; for SentencePiece it is the model's normalization of text.
// name() and version() identify the token ids a tokenizer gives (the kind, a hash of the files it
// was read from, and the implementation's version): equal for equal ids, for cache keys.
//
// Implementations are immutable after loading and safe to use from several threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace tda {

// What a tokenizer's configuration says about its special tokens.
struct SpecialTokens {
  std::optional<int32_t> bos_id;
  std::optional<int32_t> eos_id;
  bool add_bos = false;  // a document's ids start with bos_id
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  [[nodiscard]] virtual absl::StatusOr<std::vector<int32_t>> Encode(
      std::string_view text) const = 0;
  // kInvalidArgument for an id outside the vocabulary.
  [[nodiscard]] virtual absl::StatusOr<std::string> Decode(absl::Span<const int32_t> ids) const = 0;
  // Every id is in [0, vocabulary_size()).
  virtual int64_t vocabulary_size() const = 0;
  // The id of the token spelled `token` (e.g. a special token's content), if there is one.
  virtual std::optional<int32_t> TokenId(std::string_view token) const = 0;

  const std::string& name() const { return name_; }
  int version() const { return version_; }
  const SpecialTokens& special_tokens() const { return special_tokens_; }
  std::optional<int32_t> bos_id() const { return special_tokens_.bos_id; }
  std::optional<int32_t> eos_id() const { return special_tokens_.eos_id; }
  bool add_bos() const { return special_tokens_.add_bos; }

  // Set once by whoever reads the configuration (LoadTokenizer), before the tokenizer is shared.
  void set_special_tokens(const SpecialTokens& special_tokens) { special_tokens_ = special_tokens; }

 protected:
  Tokenizer(std::string name, int version, const SpecialTokens& special_tokens)
      : name_(std::move(name)), version_(version), special_tokens_(special_tokens) {}

 private:
  std::string name_;
  int version_;
  SpecialTokens special_tokens_;
};

// The tokenizer of a Hugging Face model directory, from the first of
//   tokenizer.model                 SentencePiece (Llama 1/2, Mistral)
//   tokenizer.json                  Hugging Face tokenizers, byte-level BPE (GPT-2, Llama 3)
//   vocab.json + merges.txt         GPT-2's own files
// with its special tokens from tokenizer_config.json (bos_token, eos_token, add_bos_token,
// added_tokens_decoder), special_tokens_map.json and generation_config.json (bos_token_id,
// eos_token_id), in that order of precedence over the tokenizer's own defaults, where present.
// kNotFound naming `dir` and the files looked for when there is none; errors of a file name it.
[[nodiscard]] absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::string& dir);

// The same from files found by FindTokenizerFiles (a directory's, or one tokenizer file's).
struct TokenizerFiles;
[[nodiscard]] absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizerFiles(
    const TokenizerFiles& files);

}  // namespace tda
