// Bytes that are not valid UTF-8 inside otherwise textual data (a JSONL corpus scraped from the
// web has them), carried through a strict UTF-8 JSON parser unchanged: each invalid byte b is
// replaced by the code point U+10FF00 + b (Unicode's last private-use plane, which real text
// does not use) before parsing, and mapped back to the byte b afterwards (Python's
// "surrogateescape" with a code point that UTF-8 may encode). Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tda {

// `text` with every byte that is not part of a valid UTF-8 sequence escaped; returns how many
// were. Valid: shortest-form sequences of code points up to U+10FFFF, no surrogates.
int64_t EscapeInvalidUtf8(std::string_view text, std::string* escaped);

// Undoes EscapeInvalidUtf8 in place.
void UnescapeInvalidUtf8(std::string* text);

}  // namespace tda
