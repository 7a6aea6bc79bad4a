#include "data/utf8_escape.h"

namespace tda {
namespace {

// The escape of byte b: U+10FF00 + b, in UTF-8 F4 8F BC|BD|BE|BF xx.
constexpr unsigned char kEscape0 = 0xF4, kEscape1 = 0x8F;

void AppendEscape(unsigned char b, std::string* out) {
  const uint32_t cp = 0x10FF00u + b;
  out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
  out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
  out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
  out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
}

// The length of the valid UTF-8 sequence at text[i], or 0 when the byte there starts none.
size_t ValidSequenceLength(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return 1;
  size_t length;
  uint32_t cp;
  if ((c & 0xE0) == 0xC0) {
    length = 2, cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    length = 3, cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    length = 4, cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  for (size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  static constexpr uint32_t kSmallest[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kSmallest[length] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return length;
}

bool IsEscapeAt(std::string_view text, size_t i) {
  return i + 4 <= text.size() && static_cast<unsigned char>(text[i]) == kEscape0 &&
         static_cast<unsigned char>(text[i + 1]) == kEscape1 &&
         (static_cast<unsigned char>(text[i + 2]) & 0xFC) == 0xBC;
}

}  // namespace

int64_t EscapeInvalidUtf8(std::string_view text, std::string* escaped) {
  escaped->clear();
  escaped->reserve(text.size());
  int64_t count = 0;
  for (size_t i = 0; i < text.size();) {
    const size_t length = ValidSequenceLength(text, i);
    if (length == 0) {
      AppendEscape(static_cast<unsigned char>(text[i]), escaped);
      ++count;
      ++i;
    } else {
      escaped->append(text.data() + i, length);
      i += length;
    }
  }
  return count;
}

void UnescapeInvalidUtf8(std::string* text) {
  size_t out = 0;
  for (size_t i = 0; i < text->size();) {
    if (IsEscapeAt(*text, i)) {
      const uint32_t low = ((static_cast<unsigned char>((*text)[i + 2]) & 0x3F) << 6) |
                           (static_cast<unsigned char>((*text)[i + 3]) & 0x3F);
      (*text)[out++] = static_cast<char>(low - 0xF00);  // U+10FF00 + b: low 12 bits are F00 + b
      i += 4;
    } else {
      (*text)[out++] = (*text)[i++];
    }
  }
  text->resize(out);
}

}  // namespace tda
