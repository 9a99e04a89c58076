#include "csa/tokenizer/unicode.h"

#include "csa/core/utf8.h"

namespace csa::tok {

uint32_t next_code_point(std::string_view s, size_t* i) {
  const auto b = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(s[k])); };
  const uint32_t c = b(*i);
  const size_t n = utf8_sequence_length(static_cast<unsigned char>(c));
  uint32_t cp = 0;
  if (n == 1) {
    cp = c;
  } else if (n == 2) {
    cp = ((c & 0x1F) << 6) | (b(*i + 1) & 0x3F);
  } else if (n == 3) {
    cp = ((c & 0x0F) << 12) | ((b(*i + 1) & 0x3F) << 6) | (b(*i + 2) & 0x3F);
  } else {
    cp = ((c & 0x07) << 18) | ((b(*i + 1) & 0x3F) << 12) | ((b(*i + 2) & 0x3F) << 6) |
         (b(*i + 3) & 0x3F);
  }
  *i += n;
  return cp;
}

size_t code_point_length(std::string_view s, size_t i) {
  return utf8_sequence_length(static_cast<unsigned char>(s[i]));
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

bool is_white_space(uint32_t cp) {
  // PropList.txt, White_Space.
  if (cp >= 0x09 && cp <= 0x0D) return true;
  if (cp >= 0x2000 && cp <= 0x200A) return true;
  switch (cp) {
    case 0x20:
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return false;
  }
}

namespace {

// bytes_to_unicode(): printable Latin-1 bytes stand for themselves, the other 68 bytes are
// mapped in order to U+0100, U+0101, ...
std::array<uint32_t, 256> make_byte_code_points() {
  std::array<uint32_t, 256> cps{};
  uint32_t next = 256;
  for (uint32_t b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    cps[b] = printable ? b : next++;
  }
  return cps;
}

const std::array<uint32_t, 256>& byte_code_points() {
  static const std::array<uint32_t, 256> kCps = make_byte_code_points();
  return kCps;
}

}  // namespace

const std::array<std::string, 256>& byte_level_chars() {
  static const std::array<std::string, 256> kChars = [] {
    std::array<std::string, 256> chars;
    for (size_t b = 0; b < 256; ++b) append_utf8(chars[b], byte_code_points()[b]);
    return chars;
  }();
  return kChars;
}

int byte_level_byte(uint32_t cp) {
  static const std::array<int16_t, 512> kBytes = [] {
    std::array<int16_t, 512> bytes;
    bytes.fill(-1);
    for (int b = 0; b < 256; ++b) bytes[byte_code_points()[b]] = static_cast<int16_t>(b);
    return bytes;
  }();
  return cp < kBytes.size() ? kBytes[cp] : -1;
}

void append_byte_level(std::string_view text, std::string& out) {
  const auto& chars = byte_level_chars();  // 1 or 2 bytes each
  size_t n = out.size();
  out.resize(n + 2 * text.size());
  for (char c : text) {
    const std::string& s = chars[static_cast<unsigned char>(c)];
    out[n++] = s[0];
    if (s.size() == 2) out[n++] = s[1];
  }
  out.resize(n);
}

}  // namespace csa::tok
