// The two text-level steps of byte-level BPE (GPT-2, Hugging Face ByteLevel / Split
// pre-tokenizers): splitting text into pieces with a regular expression, and the bytes-to-unicode
// table that gives every byte a printable character in vocab.json / tokenizer.json.
//
// Patterns are written in the syntax of Python's `regex` / Oniguruma, as tokenizer files carry
// them, and run through RE2. Two differences are bridged here:
//   - `\s` means Unicode White_Space (as in those engines), not RE2's ASCII [\t\n\f\r ];
//   - RE2 has no lookahead; the one lookahead byte-level patterns use, the alternative pair
//     `\s+(?!\S)|\s+`, is implemented in code: a run of whitespace followed by a non-space gives up
//     its last whitespace character to the next piece (a run of one, or one at the end of the text,
//     stays whole). Any other lookaround, or backreference, is refused with the pattern named.
// Bytes no alternative matches (invalid UTF-8) become pieces of their own, as Hugging Face's
// Split "Isolated" behaviour keeps unmatched text.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace re2 {
class RE2;
}

namespace tda {

// The pattern of GPT-2's encoder.py (and of Hugging Face's ByteLevel pre-tokenizer).
inline constexpr char kGpt2SplitPattern[] =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class ByteLevelSplitter {
 public:
  // kInvalidArgument naming `pattern` when it uses what RE2 cannot run and this class does not
  // implement.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ByteLevelSplitter>> Create(
      std::string_view pattern);
  ~ByteLevelSplitter();
  ByteLevelSplitter(const ByteLevelSplitter&) = delete;
  ByteLevelSplitter& operator=(const ByteLevelSplitter&) = delete;

  // The pieces of `text`, in order; concatenated they are `text`.
  std::vector<std::string_view> Split(std::string_view text) const;

 private:
  ByteLevelSplitter(std::unique_ptr<re2::RE2> regex, bool emulates_lookahead);
  std::unique_ptr<re2::RE2> regex_;
  // The pattern's `\s+(?!\S)` alternative became capture group 1.
  bool emulates_lookahead_;
};

// GPT-2's bytes_to_unicode: byte b as the UTF-8 of its printable stand-in character.
const std::string& ByteToUnicode(unsigned char byte);
// The byte whose stand-in starts `text` at `*pos` (advanced past it); false when the character
// there is not one of the 256 stand-ins.
bool UnicodeToByte(std::string_view text, size_t* pos, unsigned char* byte);

}  // namespace tda
