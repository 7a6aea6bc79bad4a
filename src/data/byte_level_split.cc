#include "data/byte_level_split.h"

#include <re2/re2.h>

#include <array>

#include "absl/strings/str_cat.h"

namespace tda {
namespace {

// Unicode White_Space, the `\s` of Python's regex and of Oniguruma, inside a character class.
constexpr char kWhitespaceClass[] = R"(\t\n\v\f\r\x{85}\p{Z})";
// The alternatives GPT-2-style patterns end with; RE2 cannot run the lookahead.
constexpr std::string_view kLookaheadPair = R"(\s+(?!\S)|\s+)";

absl::Status Unsupported(std::string_view pattern, std::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("the split pattern '", std::string(pattern), "' uses ", std::string(what),
                   ", which tda's byte-level BPE does not implement"));
}

// `part` of `pattern` in RE2 syntax: `\s` / `\S` spelled out, capture groups made
// non-capturing (group 1 is reserved for the emulated lookahead).
absl::StatusOr<std::string> TranslateToRe2(std::string_view part, std::string_view pattern) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < part.size(); ++i) {
    const char c = part[i];
    if (c == '\\' && i + 1 < part.size()) {
      const char next = part[++i];
      if (next == 's') {
        absl::StrAppend(&out, in_class ? "" : "[", kWhitespaceClass, in_class ? "" : "]");
      } else if (next == 'S') {
        if (in_class) return Unsupported(pattern, "\\S inside a character class");
        absl::StrAppend(&out, "[^", kWhitespaceClass, "]");
      } else if (next >= '1' && next <= '9' && !in_class) {
        return Unsupported(pattern, "a backreference");
      } else {
        out.push_back(c);
        out.push_back(next);
      }
      continue;
    }
    if (in_class) {
      if (c == ']') in_class = false;
      out.push_back(c);
      continue;
    }
    if (c == '[') {
      in_class = true;
      out.push_back(c);
      // A ']' (after an optional '^') right after '[' is a literal.
      if (i + 1 < part.size() && part[i + 1] == '^') out.push_back(part[++i]);
      if (i + 1 < part.size() && part[i + 1] == ']') out.push_back(part[++i]);
      continue;
    }
    if (c == '(') {
      if (i + 1 < part.size() && part[i + 1] == '?') {
        const std::string_view rest = part.substr(i + 2);
        if (rest.rfind("=", 0) == 0 || rest.rfind("!", 0) == 0 || rest.rfind("<=", 0) == 0 ||
            rest.rfind("<!", 0) == 0) {
          return Unsupported(pattern, "a lookaround other than \\s+(?!\\S)|\\s+");
        }
        out.push_back(c);
      } else {
        out += "(?:";
      }
      continue;
    }
    out.push_back(c);
  }
  return out;
}

// Bytes of the UTF-8 character that ends at `end` (at least 1).
size_t LastCharacterLength(std::string_view text, size_t begin, size_t end) {
  size_t start = end - 1;
  while (start > begin && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
  return end - start;
}

// Bytes of the UTF-8 character that starts at `pos` (1 for an invalid lead byte).
size_t CharacterLength(std::string_view text, size_t pos) {
  const auto lead = static_cast<unsigned char>(text[pos]);
  const size_t n = lead < 0x80         ? 1
                   : lead >> 5 == 0x6  ? 2
                   : lead >> 4 == 0xE  ? 3
                   : lead >> 3 == 0x1E ? 4
                                       : 1;
  return pos + n <= text.size() ? n : 1;
}

struct ByteTable {
  std::array<std::string, 256> to_unicode;
  std::array<int, 256 + 68> to_byte;  // by code point; -1 where no byte maps there
  ByteTable() {
    to_byte.fill(-1);
    int next_extra = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      const int code = printable ? b : 256 + next_extra++;
      to_byte[static_cast<size_t>(code)] = b;
      std::string utf8;
      if (code < 0x80) {
        utf8.push_back(static_cast<char>(code));
      } else {
        utf8.push_back(static_cast<char>(0xC0 | (code >> 6)));
        utf8.push_back(static_cast<char>(0x80 | (code & 0x3F)));
      }
      to_unicode[static_cast<size_t>(b)] = std::move(utf8);
    }
  }
};

const ByteTable& Table() {
  static const ByteTable* table = new ByteTable();
  return *table;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ByteLevelSplitter>> ByteLevelSplitter::Create(
    std::string_view pattern) {
  const size_t pair = pattern.find(kLookaheadPair);
  std::string translated;
  if (pair == std::string_view::npos) {
    auto whole = TranslateToRe2(pattern, pattern);
    if (!whole.ok()) return whole.status();
    translated = *std::move(whole);
  } else {
    const std::string_view after = pattern.substr(pair + kLookaheadPair.size());
    auto before_re2 = TranslateToRe2(pattern.substr(0, pair), pattern);
    if (!before_re2.ok()) return before_re2.status();
    auto after_re2 = TranslateToRe2(after, pattern);
    if (!after_re2.ok()) return after_re2.status();
    translated = absl::StrCat(*before_re2, "([", kWhitespaceClass, "]+)", *after_re2);
  }
  RE2::Options options;
  options.set_log_errors(false);
  auto regex = std::make_unique<re2::RE2>(translated, options);
  if (!regex->ok()) {
    return absl::InvalidArgumentError(absl::StrCat("the split pattern '", std::string(pattern),
                                                   "' does not compile in RE2 (as '", translated,
                                                   "'): ", regex->error()));
  }
  return std::unique_ptr<ByteLevelSplitter>(
      new ByteLevelSplitter(std::move(regex), pair != std::string_view::npos));
}

ByteLevelSplitter::ByteLevelSplitter(std::unique_ptr<re2::RE2> regex, bool emulates_lookahead)
    : regex_(std::move(regex)), emulates_lookahead_(emulates_lookahead) {}

ByteLevelSplitter::~ByteLevelSplitter() = default;

std::vector<std::string_view> ByteLevelSplitter::Split(std::string_view text) const {
  std::vector<std::string_view> pieces;
  const re2::StringPiece input(text.data(), text.size());
  re2::StringPiece groups[2];
  size_t pos = 0;
  while (pos < text.size()) {
    size_t start = text.size(), end = text.size();
    if (regex_->Match(input, pos, text.size(), RE2::UNANCHORED, groups, 2)) {
      start = static_cast<size_t>(groups[0].data() - text.data());
      end = start + groups[0].size();
    }
    if (start > pos) pieces.push_back(text.substr(pos, start - pos));  // unmatched bytes
    if (start == text.size()) break;
    if (end == start) end = start + CharacterLength(text, start);  // never loop on empty matches
    // `\s+(?!\S)`: a run followed by a non-space leaves its last character to the next piece.
    if (emulates_lookahead_ && groups[1].data() != nullptr && end < text.size()) {
      const size_t last = LastCharacterLength(text, start, end);
      if (end - start > last) end -= last;
    }
    pieces.push_back(text.substr(start, end - start));
    pos = end;
  }
  return pieces;
}

const std::string& ByteToUnicode(unsigned char byte) { return Table().to_unicode[byte]; }

bool UnicodeToByte(std::string_view text, size_t* pos, unsigned char* byte) {
  if (*pos >= text.size()) return false;
  const auto lead = static_cast<unsigned char>(text[*pos]);
  int code = -1;
  size_t length = 1;
  if (lead < 0x80) {
    code = lead;
  } else if (lead >> 5 == 0x6 && *pos + 1 < text.size()) {
    code = ((lead & 0x1F) << 6) | (static_cast<unsigned char>(text[*pos + 1]) & 0x3F);
    length = 2;
  }
  const std::array<int, 256 + 68>& to_byte = Table().to_byte;
  if (code < 0 || code >= static_cast<int>(to_byte.size()) || to_byte[code] < 0) return false;
  *byte = static_cast<unsigned char>(to_byte[code]);
  *pos += length;
  return true;
}

}  // namespace tda
