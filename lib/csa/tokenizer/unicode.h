// Unicode helpers for the tokenizers: UTF-8 code points, Rust's char::is_whitespace (the Unicode
// White_Space property), and GPT-2's byte <-> printable-character table (bytes_to_unicode in
// openai/gpt-2 encoder.py, BYTES_CHAR in tokenizers/src/pre_tokenizers/byte_level.rs).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace csa::tok {

// Decodes the code point at s[*i] and advances *i. `s` must be valid UTF-8.
uint32_t next_code_point(std::string_view s, size_t* i);
// Byte length of the code point starting at s[i] (valid UTF-8).
size_t code_point_length(std::string_view s, size_t i);
void append_utf8(std::string& out, uint32_t cp);

// The Unicode White_Space property (Rust char::is_whitespace, Oniguruma's \s).
bool is_white_space(uint32_t cp);

// GPT-2's byte-level alphabet: the UTF-8 encoding of the character standing for each byte.
const std::array<std::string, 256>& byte_level_chars();
// The byte a byte-level character stands for, or -1 if `cp` is not in the alphabet.
int byte_level_byte(uint32_t cp);

// Appends the byte-level rendering of every byte of `text` to `out`.
void append_byte_level(std::string_view text, std::string& out);

}  // namespace csa::tok
