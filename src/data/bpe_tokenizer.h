// Byte-level BPE as GPT-2's encoder.py and Hugging Face tokenizers apply it: added (special)
// tokens are matched first (leftmost, longest), the text between them is split into pieces by
// the split pattern (byte_level_split.h), each piece's bytes become their bytes-to-unicode
// characters, and merges are applied in rank order (the adjacent pair of lowest rank first, all
// its occurrences left to right, repeatedly) until no ranked pair is left; the vocabulary gives
// the ids. Decode maps ids back to the bytes (an added token to its content).
//
// Read from tokenizer.json (model.type "BPE", model.vocab, model.merges as "a b" strings or
// [a, b] pairs, added_tokens, pre_tokenizer ByteLevel or Sequence [Split, ByteLevel]) or from
// vocab.json + merges.txt (a first line "#version..." is skipped). What is not implemented is
// refused with its name: other model types, normalizers, pre-tokenizers, byte_fallback,
// dropout, continuing_subword_prefix / end_of_word_suffix, added tokens with lstrip / rstrip /
// single_word, a vocabulary that lacks a byte's character.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "data/byte_level_split.h"
#include "data/tokenizer.h"

namespace tda {

// A token matched in the text before splitting.
struct AddedToken {
  std::string content;
  int32_t id = 0;
};

class BpeTokenizer : public Tokenizer {
 public:
  static constexpr int kVersion = 1;

  // From a Hugging Face tokenizer.json; bos/eos and add_bos from its TemplateProcessing
  // post-processor when it has one.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<BpeTokenizer>> FromTokenizerJson(
      const std::string& path);
  // From GPT-2's vocab.json and merges.txt with the GPT-2 pattern and no prefix space. `added`
  // tokens (from tokenizer_config.json) and the `special` tokens of the vocabulary (e.g.
  // "<|endoftext|>"; kInvalidArgument when one is not in it) are matched before splitting.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<BpeTokenizer>> FromVocabAndMerges(
      const std::string& vocab_path, const std::string& merges_path,
      const std::vector<AddedToken>& added, const std::vector<std::string>& special);
  ~BpeTokenizer() override;

  [[nodiscard]] absl::StatusOr<std::vector<int32_t>> Encode(std::string_view text) const override;
  [[nodiscard]] absl::StatusOr<std::string> Decode(absl::Span<const int32_t> ids) const override;
  int64_t vocabulary_size() const override { return static_cast<int64_t>(tokens_.size()); }
  std::optional<int32_t> TokenId(std::string_view token) const override;

 private:
  // Everything a BPE tokenizer is made of, as read from its files.
  struct Parts;
  BpeTokenizer(std::string name, const SpecialTokens& special_tokens);
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<BpeTokenizer>> Build(Parts parts);
  // The ids of one piece of split text, through the cache.
  void EncodePiece(std::string_view piece, std::vector<int32_t>* ids) const;
  std::vector<int32_t> MergePiece(std::string_view piece) const;

  std::unique_ptr<ByteLevelSplitter> splitter_;
  std::unique_ptr<re2::RE2> added_matcher_;  // null when there are no added tokens
  bool add_prefix_space_ = false;
  absl::flat_hash_map<std::string, int32_t> ids_;  // the vocabulary and the added tokens
  std::vector<std::string> tokens_;                // by id: the bytes the token stands for
  std::vector<bool> has_token_;                    // by id: false for ids no token has
  std::array<int32_t, 256> byte_ids_{};
  // (left id, right id) -> (rank, merged id).
  absl::flat_hash_map<uint64_t, std::pair<int32_t, int32_t>> merges_;
  mutable absl::Mutex cache_mutex_;
  mutable absl::flat_hash_map<std::string, std::vector<int32_t>> cache_
      ABSL_GUARDED_BY(cache_mutex_);
};

}  // namespace tda
