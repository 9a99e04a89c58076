// Unit tests of the tokenizer.json pipeline stages on their own: the PCRE2 regexes, the split
// behaviours of pre-tokenizers, normalizers and decoders (tokenizers' own test cases where
// they exist).
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "csa/core/json.h"
#include "csa/tokenizer/pipeline.h"
#include "csa/tokenizer/regex.h"

namespace {

using csa::Json;
using Strings = std::vector<std::string>;

Strings matches(const std::string& pattern, const std::string& text) {
  csa::tok::Regex re(pattern, "unit");
  std::vector<csa::tok::MatchRange> m;
  re.find_all(text, m);
  Strings out;
  for (const auto& r : m) out.push_back(text.substr(r.start, r.end - r.start));
  return out;
}

Strings pre_tokenize(const std::string& json, const std::string& text, bool at_start = true) {
  const auto p = csa::tok::make_pre_tokenizer(Json::parse(json), "unit");
  std::vector<csa::tok::Piece> pieces{{text, at_start}};
  p->pre_tokenize(pieces);
  Strings out;
  for (const auto& piece : pieces) out.push_back(piece.text);
  return out;
}

std::string normalize(const std::string& json, std::string text) {
  csa::tok::make_normalizer(Json::parse(json), "unit")->normalize(text);
  return text;
}

std::string decode(const std::string& json, Strings tokens) {
  csa::tok::make_decoder(Json::parse(json), "unit")->decode_chain(tokens);
  std::string out;
  for (const auto& t : tokens) out += t;
  return out;
}

std::string split_json(const std::string& behavior, bool invert) {
  return R"({"type": "Split", "pattern": {"String": " "}, "behavior": ")" + behavior +
         R"(", "invert": )" + (invert ? "true" : "false") + "}";
}

const char* kGpt2 = R"({"type": "ByteLevel", "add_prefix_space": false, "use_regex": true})";
const char* kQwen2Split = R"({"type": "Split", "pattern": {"Regex":
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
  "behavior": "Isolated", "invert": false})";

}  // namespace

TEST_CASE("regexes follow Oniguruma: Unicode classes, White_Space, lookahead, (?i:)",
          "[unit][tokenizer]") {
  CHECK(matches(R"(\s+)",
                "a\xC2\x85"
                "b\xE3\x80\x80"
                "c") == Strings{"\xC2\x85", "\xE3\x80\x80"});
  CHECK(matches(R"(\S+)",
                "a\xC2\x85"
                "b") == Strings{"a", "b"});  // U+0085 is White_Space
  CHECK(matches(R"([^\s\p{L}]+)", "x\xC2\x85!?") == Strings{"!?"});
  CHECK(matches(R"(\s+(?!\S)|\s+)", "a   b") == Strings{"  ", " "});
  CHECK(matches(R"((?i:'s|'t))", "IT'S it's") == Strings{"'S", "'s"});
  CHECK(matches(R"(\p{L}+|\p{N})", "caf\xC3\xA9 42") == Strings{"caf\xC3\xA9", "4", "2"});
  CHECK(matches("x*", "ab") == Strings{"", "", ""});  // empty matches, one per position
  CHECK(
      csa::tok::translate_onig_pattern(R"([^\s\p{L}])") ==
      R"([^\t-\r\x{20}\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}\p{L}])");
  CHECK(matches(csa::tok::escape_regex("a.b*"), "a.b* axb") == Strings{"a.b*"});
}

TEST_CASE("ByteLevel pre-tokenizer: the GPT-2 regex, then bytes as characters",
          "[unit][tokenizer]") {
  CHECK(pre_tokenize(kGpt2, "Hello world") == Strings{"Hello", "\xC4\xA0world"});
  CHECK(pre_tokenize(kGpt2, "a  b") == Strings{"a", "\xC4\xA0",
                                               "\xC4\xA0"
                                               "b"});
  CHECK(pre_tokenize(kGpt2, "  lead") == Strings{"\xC4\xA0", "\xC4\xA0lead"});
  CHECK(pre_tokenize(kGpt2, "don't DON'T") == Strings{"don", "'t",
                                                      "\xC4\xA0"
                                                      "DON",
                                                      "'", "T"});
  CHECK(pre_tokenize(kGpt2, "x\n\n") == Strings{"x", "\xC4\x8A\xC4\x8A"});
  CHECK(pre_tokenize(kGpt2, "\xC3\xA9") == Strings{"\xC3\x83\xC2\xA9"});  // é = C3 A9 -> Ã ©
  const char* prefix = R"({"type": "ByteLevel", "add_prefix_space": true, "use_regex": true})";
  CHECK(pre_tokenize(prefix, "hi") == Strings{"\xC4\xA0hi"});
  CHECK(pre_tokenize(prefix, " hi") == Strings{"\xC4\xA0hi"});
  const char* no_regex = R"({"type": "ByteLevel", "add_prefix_space": false, "use_regex": false})";
  CHECK(pre_tokenize(no_regex, "a b") == Strings{"a\xC4\xA0"
                                                 "b"});
}

TEST_CASE("Split + ByteLevel(use_regex=false): the Qwen2 / Llama-3 scheme", "[unit][tokenizer]") {
  const std::string seq =
      std::string(R"({"type": "Sequence", "pretokenizers": [)") + kQwen2Split +
      R"(, {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]})";
  CHECK(pre_tokenize(seq, "IT'S 2024!\n\nok") ==
        Strings{"IT", "'S", "\xC4\xA0", "2", "0", "2", "4", "!\xC4\x8A\xC4\x8A", "ok"});
  CHECK(pre_tokenize(seq, "a   b") == Strings{"a", "\xC4\xA0\xC4\xA0",
                                              "\xC4\xA0"
                                              "b"});
}

TEST_CASE("Split behaviours and invert", "[unit][tokenizer]") {
  const std::string text = "a b  c";
  CHECK(pre_tokenize(split_json("Removed", false), text) == Strings{"a", "b", "c"});
  CHECK(pre_tokenize(split_json("Isolated", false), text) == Strings{"a", " ", "b", " ", " ", "c"});
  CHECK(pre_tokenize(split_json("MergedWithPrevious", false), text) ==
        Strings{"a ", "b ", " ", "c"});
  CHECK(pre_tokenize(split_json("MergedWithNext", false), text) == Strings{"a", " b", " ", " c"});
  CHECK(pre_tokenize(split_json("Contiguous", false), text) == Strings{"a", " ", "b", "  ", "c"});
  CHECK(pre_tokenize(split_json("Removed", true), text) == Strings{" ", " ", " "});
}

TEST_CASE("Metaspace pre-tokenizer: replacement, prepend scheme, split", "[unit][tokenizer]") {
  auto meta = [](const char* scheme, bool split) {
    return std::string(R"({"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": ")") +
           scheme + R"(", "split": )" + (split ? "true" : "false") + "}";
  };
  const std::string m = "\xE2\x96\x81";
  CHECK(pre_tokenize(meta("first", true), "a b") == Strings{m + "a", m + "b"});
  CHECK(pre_tokenize(meta("first", true), "a b", false) == Strings{"a", m + "b"});
  CHECK(pre_tokenize(meta("always", true), "a b", false) == Strings{m + "a", m + "b"});
  CHECK(pre_tokenize(meta("never", true), "a  b") == Strings{"a", m, m + "b"});
  CHECK(pre_tokenize(meta("first", false), "a b") == Strings{m + "a" + m + "b"});
  CHECK(pre_tokenize(meta("always", false), "").empty());
  CHECK(pre_tokenize(R"({"type": "Metaspace", "replacement": "\u2581", "add_prefix_space": false})",
                     "a") == Strings{"a"});
}

TEST_CASE("Digits pre-tokenizer", "[unit][tokenizer]") {
  CHECK(pre_tokenize(R"({"type": "Digits", "individual_digits": true})", "a12b") ==
        Strings{"a", "1", "2", "b"});
  CHECK(pre_tokenize(R"({"type": "Digits", "individual_digits": false})", "a12b") ==
        Strings{"a", "12", "b"});
}

TEST_CASE("normalizers: Sequence, Prepend, Replace, Strip", "[unit][tokenizer]") {
  const char* llama = R"({"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "_"},
      {"type": "Replace", "pattern": {"String": " "}, "content": "_"}]})";
  CHECK(normalize(llama, "a b") == "_a_b");
  CHECK(normalize(llama, "").empty());
  CHECK(normalize(R"({"type": "Replace", "pattern": {"Regex": "\\s+"}, "content": " "})",
                  "a \t\nb") == "a b");
  CHECK(normalize(R"({"type": "Strip", "strip_left": true, "strip_right": true})",
                  "\xE3\x80\x80 a b \n") == "a b");
  CHECK(normalize(R"({"type": "Strip", "strip_left": false, "strip_right": true})", " a ") == " a");
}

TEST_CASE("decoders: ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip",
          "[unit][tokenizer]") {
  CHECK(decode(R"({"type": "ByteLevel"})", {"\xC4\xA0hello", "<|x|>", " raw", "\xC3\x83"}) ==
        " hello<|x|> raw\xEF\xBF\xBD");  // a token outside the alphabet is kept as is
  CHECK(decode(R"({"type": "ByteLevel"})", {"\xC3\x83", "\xC2\xA9"}) == "\xC3\xA9");
  CHECK(decode(R"({"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always"})",
               {"\xE2\x96\x81"
                "a\xE2\x96\x81"
                "b",
                "\xE2\x96\x81"
                "c"}) == "ab c");
  CHECK(decode(R"({"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "never"})",
               {"\xE2\x96\x81"
                "a"}) == " a");
  // A run of byte tokens that is not valid UTF-8 becomes one U+FFFD per token, "A" included.
  CHECK(decode(R"({"type": "ByteFallback"})", {"<0xC3>", "<0xA9>", "x", "<0xFF>", "<0x41>"}) ==
        "\xC3\xA9x\xEF\xBF\xBD\xEF\xBF\xBD");
  CHECK(decode(R"({"type": "ByteFallback"})", {"<0xE2>", "<0x96>"}) == "\xEF\xBF\xBD\xEF\xBF\xBD");
  CHECK(decode(R"({"type": "Sequence", "decoders": [{"type": "Fuse"},
      {"type": "Strip", "content": " ", "start": 2, "stop": 1}]})",
               {"   a", "b  "}) == " ab ");
  CHECK(decode(R"({"type": "Replace", "pattern": {"Regex": "x+"}, "content": "-"})",
               {"axxb", "x"}) == "a-b-");
}
