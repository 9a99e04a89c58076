// UTF-8 validation. Text inputs are UTF-8; invalid bytes are an error giving the byte offset,
// or (explicitly requested) replaced by U+FFFD the way Python's errors="replace" does.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace csa {

// Byte offset of the first invalid UTF-8 sequence, or nullopt if `s` is valid
// (overlong forms, surrogates and code points past U+10FFFF are invalid).
std::optional<size_t> find_invalid_utf8(std::string_view s);

// Replaces each maximal invalid subpart by U+FFFD (the WHATWG / Python "replace" policy).
std::string replace_invalid_utf8(std::string_view s);

// Length in bytes of the UTF-8 sequence starting with lead byte `c` (1 for invalid leads).
inline size_t utf8_sequence_length(unsigned char c) {
  if (c < 0x80) return 1;
  if ((c >> 5) == 0x6) return 2;
  if ((c >> 4) == 0xE) return 3;
  if ((c >> 3) == 0x1E) return 4;
  return 1;
}

}  // namespace csa
