// Text through a GPT-2-style byte-level BPE tokenizer (tests/fixtures/tokenizers/byte-level-small,
// 256 byte tokens + 400 merges cut from gpt2-mini, with <|endoftext|> as an added special token).
// The first input byte picks the mode:
//   even: the rest as raw bytes. Valid UTF-8 must encode, and decode(encode(x)) == x (byte-level
//         BPE is lossless); invalid UTF-8 must be an InputError, and with replace_invalid_utf8 it
//         must encode and round-trip to the U+FFFD-replaced text.
//   odd:  the rest as code points (3 bytes each, any scalar value), so that the whole Unicode
//         range is reached, not just what mutations of bytes hit; must round-trip exactly.
// Decoding the produced ids is also checked against random ids: out-of-range ids are InputErrors.
#include <cstdlib>
#include <memory>

#include "csa/core/error.h"
#include "csa/core/utf8.h"
#include "csa/tokenizer/tokenizer.h"
#include "csa/tokenizer/unicode.h"
#include "fuzz_support.h"

#ifndef CSA_FUZZ_TOKENIZER
#define CSA_FUZZ_TOKENIZER "tests/fixtures/tokenizers/byte-level-small/tokenizer.json"
#endif

namespace {

const csa::Tokenizer& tokenizer() {
  static const std::unique_ptr<csa::Tokenizer> kTok = [] {
    const char* env = std::getenv("CSA_FUZZ_TOKENIZER");
    return csa::Tokenizer::from_path(env != nullptr ? env : CSA_FUZZ_TOKENIZER);
  }();
  return *kTok;
}

void check_round_trip(const std::string& text, const csa::EncodeOptions& opts,
                      const std::string& expected) {
  const csa::Tokenizer& tok = tokenizer();
  std::vector<int32_t> ids = tok.encode(text, opts);
  for (int32_t id : ids) CSA_FUZZ_REQUIRE(id >= 0 && id < tok.vocab_size(), "id out of range");
  CSA_FUZZ_REQUIRE(tok.decode(ids) == expected, "decode(encode(x)) != x");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)tokenizer();  // load once, outside the measured runs; a load failure is a crash
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  const std::string_view rest = csa::fuzz::as_view(data + 1, size - 1);
  const csa::EncodeOptions strict{/*add_special_tokens=*/true, /*replace_invalid_utf8=*/false};
  const csa::EncodeOptions lenient{/*add_special_tokens=*/true, /*replace_invalid_utf8=*/true};

  if (mode % 2 == 0) {
    const std::string text(rest);
    const bool valid = !csa::find_invalid_utf8(text).has_value();
    if (valid) {
      csa::fuzz::guarded([&] { check_round_trip(text, strict, text); });
    } else {
      bool typed = false;
      try {
        (void)tokenizer().encode(text, strict);
      } catch (const csa::InputError&) {
        typed = true;
      } catch (...) {
        csa::fuzz::die("invalid UTF-8 raised something other than an InputError");
      }
      CSA_FUZZ_REQUIRE(typed, "invalid UTF-8 was accepted by a strict encode");
      const std::string replaced = csa::replace_invalid_utf8(text);
      CSA_FUZZ_REQUIRE(!csa::find_invalid_utf8(replaced).has_value(), "replacement not UTF-8");
      csa::fuzz::guarded([&] { check_round_trip(text, lenient, replaced); });
    }
  } else {
    std::string text;
    for (size_t i = 0; i + 3 <= rest.size(); i += 3) {
      uint32_t cp = (static_cast<uint8_t>(rest[i]) << 16 | static_cast<uint8_t>(rest[i + 1]) << 8 |
                     static_cast<uint8_t>(rest[i + 2])) %
                    0x110000;
      if (cp >= 0xD800 && cp <= 0xDFFF) cp -= 0x800;  // surrogates are not scalar values
      csa::tok::append_utf8(text, cp);
    }
    CSA_FUZZ_REQUIRE(!csa::find_invalid_utf8(text).has_value(), "generated text not UTF-8");
    csa::fuzz::guarded([&] { check_round_trip(text, strict, text); });
  }

  // Random ids: in range they decode (possibly to U+FFFD), out of range they are InputErrors.
  std::vector<int32_t> ids;
  for (size_t i = 0; i + 2 <= rest.size() && ids.size() < 64; i += 2)
    ids.push_back(static_cast<int16_t>(static_cast<uint8_t>(rest[i]) << 8 |
                                       static_cast<uint8_t>(rest[i + 1])));
  return csa::fuzz::guarded([&] {
    const std::string out = tokenizer().decode(ids, mode & 2);
    CSA_FUZZ_REQUIRE(!csa::find_invalid_utf8(out).has_value(), "decode produced invalid UTF-8");
  });
}
