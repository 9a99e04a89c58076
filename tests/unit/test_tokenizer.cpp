// Unit tests of the tokenizers on small inline tokenizer.json / vocab / tokenizer.bin files: each
// feature of the Hugging Face pipeline and each refusal. No files needed.
#include <catch2/catch.hpp>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "csa/core/error.h"
#include "csa/core/json.h"
#include "csa/tokenizer/bpe.h"
#include "csa/tokenizer/tokenizer.h"

namespace {

using csa::Json;
using Ids = std::vector<int32_t>;

constexpr csa::EncodeOptions kPlain{false, false};
constexpr csa::EncodeOptions kSpecial{true, false};

// The message of the exception of type E that `f` throws ("" if it throws none).
template <typename E, typename F>
std::string thrown(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "";
}

std::unique_ptr<csa::Tokenizer> load(const std::map<std::string, std::string>& files) {
  return csa::Tokenizer::from_files(files, "unit");
}

std::unique_ptr<csa::Tokenizer> load_json(const Json& j) {
  return load({{"tokenizer.json", j.dump()}});
}

// A GPT-2 style byte-level BPE: "Ġ" is the byte-level space.
Json byte_level_json() {
  return Json::parse(R"({
    "version": "1.0", "truncation": null, "padding": null,
    "added_tokens": [{"id": 7, "content": "<|end|>", "single_word": false, "lstrip": false,
                      "rstrip": false, "normalized": false, "special": true}],
    "normalizer": null,
    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true,
                      "use_regex": true},
    "post_processor": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false,
                       "use_regex": true},
    "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true,
                "use_regex": true},
    "model": {"type": "BPE", "dropout": null, "unk_token": null,
              "continuing_subword_prefix": null, "end_of_word_suffix": null, "fuse_unk": false,
              "byte_fallback": false, "ignore_merges": false,
              "vocab": {"a": 0, "b": 1, "c": 2, "\u0120": 3, "ab": 4, "\u0120a": 5,
                        "\u0120ab": 6, "<|end|>": 7, "aa": 8, "'": 9, "s": 10, "'s": 11},
              "merges": ["a b", "\u0120 a", "\u0120a b", "a a", "' s"]}
  })");
}

// A Llama style BPE: Metaspace, byte fallback, <s> template, SentencePiece-like decoder chain.
Json metaspace_json() {
  return Json::parse(R"({
    "version": "1.0",
    "added_tokens": [
      {"id": 0, "content": "<unk>", "single_word": false, "lstrip": false, "rstrip": false,
       "normalized": false, "special": true},
      {"id": 1, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false,
       "normalized": false, "special": true},
      {"id": 2, "content": "</s>", "single_word": false, "lstrip": false, "rstrip": false,
       "normalized": false, "special": true}],
    "normalizer": null,
    "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first",
                      "split": false},
    "post_processor": {"type": "TemplateProcessing",
      "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
      "pair": [],
      "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
    "decoder": {"type": "Sequence", "decoders": [
      {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
      {"type": "ByteFallback"}, {"type": "Fuse"},
      {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
    "model": {"type": "BPE", "dropout": null, "unk_token": "<unk>",
              "continuing_subword_prefix": null, "end_of_word_suffix": null, "fuse_unk": true,
              "byte_fallback": true, "ignore_merges": false,
              "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "<0xC3>": 3, "<0xA9>": 4, "\u2581": 5,
                        "h": 6, "i": 7, "\u2581h": 8, "\u2581hi": 9},
              "merges": [["\u2581", "h"], ["\u2581h", "i"]]}
  })");
}

// llama2.c's tokenizer.bin: max_token_length, then (score, length, bytes) per token.
std::string llama2c_bin(const std::vector<std::pair<std::string, float>>& extra) {
  std::vector<std::pair<std::string, float>> tokens = {
      {"<unk>", 0}, {"\n<s>\n", 0}, {"\n</s>\n", 0}};
  static const char kHex[] = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b)
    tokens.push_back({std::string("<0x") + kHex[b >> 4] + kHex[b & 15] + ">", 0});
  tokens.insert(tokens.end(), extra.begin(), extra.end());
  auto put = [](std::string& out, const void* p, size_t n) {
    out.append(static_cast<const char*>(p), n);
  };
  std::string out;
  const int32_t max_len = 8;
  put(out, &max_len, 4);
  for (const auto& [piece, score] : tokens) {
    const auto len = static_cast<int32_t>(piece.size());
    put(out, &score, 4);
    put(out, &len, 4);
    out += piece;
  }
  return out;
}

}  // namespace

TEST_CASE("byte-level BPE applies merges lowest rank first, leftmost first", "[unit][tokenizer]") {
  const auto tok = load_json(byte_level_json());
  // " ab" -> Ġ a b: "a b" (rank 0) wins over "Ġ a" (rank 1); no "Ġ ab" merge follows.
  CHECK(tok->encode("ab ab", kPlain) == Ids{4, 3, 4});
  CHECK(tok->encode("aaa", kPlain) == Ids{8, 0});   // two equal-rank pairs: the left one
  CHECK(tok->encode("a's", kPlain) == Ids{0, 11});  // the GPT-2 regex isolates 's
  CHECK(tok->encode("", kPlain).empty());
  CHECK(tok->encode("d", kPlain).empty());  // no token, no unk: HF drops the character
  CHECK(tok->decode({4, 3, 4}) == "ab ab");
  CHECK(tok->vocab_size() == 12);
}

TEST_CASE("merges read the same as \"a b\" strings and [a, b] pairs", "[unit][tokenizer]") {
  Json pairs = byte_level_json();
  Json list = Json::array();
  for (const auto& m : pairs["model"]["merges"]) {
    const std::string s = m.get<std::string>();
    list.push_back(Json::array({s.substr(0, s.find(' ')), s.substr(s.find(' ') + 1)}));
  }
  pairs["model"]["merges"] = list;
  const auto a = load_json(byte_level_json()), b = load_json(pairs);
  for (const char* text : {"ab ab", "aaa ab", " a's"})
    CHECK(a->encode(text, kPlain) == b->encode(text, kPlain));
}

TEST_CASE("ignore_merges takes a word that is in the vocabulary whole", "[unit][tokenizer]") {
  Json j = byte_level_json();
  CHECK(load_json(j)->encode(" ab", kPlain) == Ids{3, 4});
  j["model"]["ignore_merges"] = true;
  CHECK(load_json(j)->encode(" ab", kPlain) == Ids{6});
}

TEST_CASE("added tokens split the text before pre-tokenization", "[unit][tokenizer]") {
  Json j = byte_level_json();
  const auto tok = load_json(j);
  CHECK(tok->encode("c<|end|>a", kPlain) == Ids{2, 7, 0});
  CHECK(tok->decode({2, 7, 0}) == "c<|end|>a");
  CHECK(tok->decode({2, 7, 0}, true) == "ca");
  SECTION("lstrip and rstrip take the White_Space around the token") {
    j["added_tokens"][0]["lstrip"] = true;
    j["added_tokens"][0]["rstrip"] = true;
    CHECK(load_json(j)->encode("c \t<|end|>\u3000 a", kPlain) == Ids{2, 7, 0});
  }
  SECTION("single_word tokens only match between non-word characters") {
    j["added_tokens"][0]["single_word"] = true;
    const auto sw = load_json(j);
    CHECK(sw->encode("c <|end|> a", kPlain) == Ids{2, 3, 7, 5});
    const Ids glued = sw->encode("c<|end|>", kPlain);
    CHECK(std::find(glued.begin(), glued.end(), 7) == glued.end());
  }
  SECTION("normalized tokens are matched in the normalized text") {
    j["normalizer"] =
        Json::parse(R"({"type": "Replace", "pattern": {"String": "X"}, "content": "a"})");
    j["added_tokens"][0]["content"] = "cX";
    j["added_tokens"][0]["normalized"] = true;
    j["model"]["vocab"]["cX"] = 12;
    const auto n = load_json(j);
    CHECK(n->encode("bcX", kPlain) == Ids{1, 12});  // "cX" normalizes to "ca", found in "bca"
    CHECK(n->encode("bca", kPlain) == Ids{1, 12});
  }
  SECTION("an added token missing from the vocabulary gets the next id") {
    j["added_tokens"].push_back(Json::parse(R"({"id": 99, "content": "<new>", "special": false})"));
    const auto t = load_json(j);
    CHECK(t->encode("a<new>", kPlain) == Ids{0, 12});
    CHECK(t->vocab_size() == 13);
  }
}

TEST_CASE("TemplateProcessing adds BOS only when special tokens are requested",
          "[unit][tokenizer]") {
  Json j = byte_level_json();
  j["post_processor"] = Json::parse(R"({"type": "TemplateProcessing",
    "single": [{"SpecialToken": {"id": "<|end|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
               {"SpecialToken": {"id": "<|end|>", "type_id": 0}}],
    "special_tokens": {"<|end|>": {"id": "<|end|>", "ids": [7], "tokens": ["<|end|>"]}}})");
  const auto tok = load_json(j);
  CHECK(tok->encode("ab", kSpecial) == Ids{7, 4, 7});
  CHECK(tok->encode("ab", kPlain) == Ids{4});
  CHECK(tok->bos_id() == 7);
  CHECK(tok->eos_id() == 7);
  j["post_processor"] =
      Json::parse(R"({"type": "Sequence", "processors": [{"type": "ByteLevel"}, )" +
                  j["post_processor"].dump() + "]}");
  CHECK(load_json(j)->encode("ab", kSpecial) == Ids{7, 4, 7});
}

TEST_CASE("BOS and EOS come from tokenizer_config.json when it names them", "[unit][tokenizer]") {
  const auto tok =
      load({{"tokenizer.json", byte_level_json().dump()},
            {"tokenizer_config.json", R"({"bos_token": {"content": "c"}, "eos_token": "ab"})"}});
  CHECK(tok->bos_id() == 2);
  CHECK(tok->eos_id() == 4);
}

TEST_CASE("Metaspace BPE with byte fallback, unk and the Llama decoder chain",
          "[unit][tokenizer]") {
  Json j = metaspace_json();
  const auto tok = load_json(j);
  CHECK(tok->encode("hi \xC3\xA9", kPlain) == Ids{9, 5, 3, 4});
  CHECK(tok->encode("hi", kSpecial) == Ids{1, 9});
  CHECK(tok->decode({9, 5, 3, 4}) == "hi \xC3\xA9");
  CHECK(tok->decode({1, 9}) == "<s> hi");  // HF: the Strip only removes a leading space
  CHECK(tok->decode({1, 9}, true) == "hi");
  CHECK(tok->decode({9, 3}) == "hi\xEF\xBF\xBD");  // a lone byte token is U+FFFD
  // prepend_scheme "first": only the stretch at the very start of the input gets the ▁.
  CHECK(tok->encode("<s>hi", kPlain) == Ids{1, 6, 7});
  CHECK(tok->encode("xx", kPlain) == Ids{5, 0});  // ▁ then x x fused into one unk
  j["model"]["fuse_unk"] = false;
  CHECK(load_json(j)->encode("xx", kPlain) == Ids{5, 0, 0});
  j["pre_tokenizer"]["prepend_scheme"] = "always";
  CHECK(load_json(j)->encode("<s>hi", kPlain) == Ids{1, 9});
  j["pre_tokenizer"]["prepend_scheme"] = "never";
  CHECK(load_json(j)->encode("hi", kPlain) == Ids{6, 7});
}

TEST_CASE("a Prepend + Replace normalizer (legacy Llama) normalizes each stretch",
          "[unit][tokenizer]") {
  Json j = metaspace_json();
  j["pre_tokenizer"] = nullptr;
  j["normalizer"] = Json::parse(R"({"type": "Sequence", "normalizers": [
      {"type": "Prepend", "prepend": "\u2581"},
      {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]})");
  const auto tok = load_json(j);
  CHECK(tok->encode("hi hi", kPlain) == Ids{9, 9});
  CHECK(tok->encode("<s> hi", kPlain) == Ids{1, 5, 9});  // "▁▁hi" after the added token, as HF
}

TEST_CASE("GPT-2 vocab.json + merges.txt", "[unit][tokenizer]") {
  const std::string vocab = R"({"a": 0, "b": 1, "ab": 2, "\u0120": 3, "<|endoftext|>": 4})";
  const std::string merges = "#version: 0.2\r\na b\r\n";
  const auto tok = load({{"vocab.json", vocab}, {"merges.txt", merges}});
  CHECK(tok->encode("ab ab<|endoftext|>", kPlain) == Ids{2, 3, 2, 4});
  CHECK(tok->decode({2, 3, 2, 4}) == "ab ab<|endoftext|>");
  CHECK(tok->eos_id() == 4);
  CHECK(tok->description().rfind("gpt2 vocab+merges", 0) == 0);
  const auto same = load({{"encoder.json", vocab}, {"vocab.bpe", merges}});
  CHECK(same->encode("abab", kPlain) == Ids{2, 2});
  const std::string bad = thrown<csa::FormatError>([&] {
    load({{"vocab.json", vocab}, {"merges.txt", "a b\na b c\n"}});
  });
  CHECK_THAT(bad, Catch::Contains("unit/merges.txt") && Catch::Contains("merge 2"));
  const std::string missing = thrown<csa::FormatError>([&] {
    load({{"vocab.json", vocab}, {"merges.txt", "a c\n"}});
  });
  CHECK_THAT(missing, Catch::Contains("'c'") && Catch::Contains("not in the vocabulary"));
}

TEST_CASE("from_files prefers tokenizer.json, then GPT-2 files, then SentencePiece, then llama2.c",
          "[unit][tokenizer]") {
  const std::string vocab = R"({"a": 0})";
  auto both = load({{"tokenizer.json", byte_level_json().dump()},
                    {"vocab.json", vocab},
                    {"merges.txt", ""},
                    {"tok512.bin", llama2c_bin({})}});
  CHECK(both->description().rfind("tokenizer.json", 0) == 0);
  auto pair = load({{"vocab.json", vocab}, {"merges.txt", ""}, {"tok512.bin", llama2c_bin({})}});
  CHECK(pair->description().rfind("gpt2", 0) == 0);
  auto bin = load({{"merges.txt", ""}, {"tok512.bin", llama2c_bin({})}});
  CHECK(bin->description().rfind("llama2.c", 0) == 0);
  CHECK_THAT(thrown<csa::InputError>([&] { load({}); }), Catch::Contains("no tokenizer files"));
  CHECK_THAT(thrown<csa::InputError>([&] {
               load({{"merges.txt", ""}});
             }),
             Catch::Contains("unit/merges.txt is there"));
}

TEST_CASE("invalid UTF-8 is an InputError with the offset, or replaced on request",
          "[unit][tokenizer]") {
  for (const auto& tok :
       {load_json(byte_level_json()), load({{"tok512.bin", llama2c_bin({{" ", -1}})}})}) {
    const std::string msg = thrown<csa::InputError>([&] {
      tok->encode(
          "ab\xFF"
          "a",
          kPlain);
    });
    CHECK_THAT(msg, Catch::Contains("byte offset 2"));
    CHECK(tok->encode("ab\xFF"
                      "a",
                      {false, true}) == tok->encode("ab\xEF\xBF\xBD"
                                                    "a",
                                                    kPlain));
  }
}

TEST_CASE("decoding an id outside the vocabulary is an InputError", "[unit][tokenizer]") {
  const auto tok = load_json(byte_level_json());
  CHECK_THAT(thrown<csa::InputError>([&] {
               tok->decode({0, 12});
             }),
             Catch::Contains("token id 12"));
  CHECK_THAT(thrown<csa::InputError>([&] { tok->decode({-1}); }), Catch::Contains("token id -1"));
}

TEST_CASE("unknown pipeline stages are UnsupportedErrors naming the stage and the file",
          "[unit][tokenizer]") {
  struct Case {
    const char* field;
    const char* json;
    const char* name;
  };
  const Case cases[] = {
      {"normalizer", R"({"type": "NFKC"})", "NFKC"},
      {"normalizer", R"({"type": "Sequence", "normalizers": [{"type": "Lowercase"}]})",
       "Lowercase"},
      {"pre_tokenizer", R"({"type": "BertPreTokenizer"})", "BertPreTokenizer"},
      {"post_processor", R"({"type": "Fancy"})", "Fancy"},
      {"decoder", R"({"type": "WordPiece", "prefix": "##"})", "WordPiece"},
      {"model", R"({"type": "Unigram", "vocab": []})", "Unigram"},
  };
  for (const Case& c : cases) {
    Json j = byte_level_json();
    j[c.field] = Json::parse(c.json);
    const std::string msg = thrown<csa::UnsupportedError>([&] { load_json(j); });
    CHECK_THAT(msg, Catch::Contains(c.name) && Catch::Contains("unit/tokenizer.json"));
  }
  Json j = byte_level_json();
  j["model"]["dropout"] = 0.1;
  CHECK_THAT(thrown<csa::UnsupportedError>([&] { load_json(j); }), Catch::Contains("dropout"));
}

TEST_CASE("malformed tokenizer.json files are FormatErrors naming the problem",
          "[unit][tokenizer]") {
  CHECK_THAT(thrown<csa::FormatError>([&] {
               load({{"tokenizer.json", "{\"model\": "}});
             }),
             Catch::Contains("unit/tokenizer.json") && Catch::Contains("not valid JSON"));
  Json j = byte_level_json();
  j["model"]["vocab"]["a"] = "zero";
  CHECK_THAT(thrown<csa::FormatError>([&] { load_json(j); }), Catch::Contains("token 'a'"));
  j = byte_level_json();
  j["model"]["merges"].push_back("a q");
  CHECK_THAT(thrown<csa::FormatError>([&] { load_json(j); }), Catch::Contains("'q'"));
  j = byte_level_json();
  j["model"]["merges"].push_back(7);
  CHECK_THAT(thrown<csa::FormatError>([&] { load_json(j); }), Catch::Contains("model.merges[5]"));
  j = byte_level_json();
  j["pre_tokenizer"] =
      Json::parse(R"({"type": "Split", "pattern": {"Regex": "(a"}, "behavior": "Isolated"})");
  CHECK_THAT(thrown<csa::FormatError>([&] { load_json(j); }), Catch::Contains("(a"));
  j["pre_tokenizer"] =
      Json::parse(R"({"type": "Split", "pattern": {"Regex": "a"}, "behavior": "Sideways"})");
  CHECK_THAT(thrown<csa::FormatError>([&] { load_json(j); }), Catch::Contains("Sideways"));
  j = byte_level_json();
  j["post_processor"] = Json::parse(R"({"type": "TemplateProcessing", "single": [
      {"SpecialToken": {"id": "<x>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
      "special_tokens": {}})");
  CHECK_THAT(thrown<csa::FormatError>([&] { load_json(j); }), Catch::Contains("'<x>'"));
  j = byte_level_json();
  j["model"]["unk_token"] = "<nope>";
  CHECK_THAT(thrown<csa::FormatError>([&] { load_json(j); }), Catch::Contains("<nope>"));
}

TEST_CASE("llama2.c tokenizer.bin: run.c's encode and decode", "[unit][tokenizer]") {
  // Pieces after the 259 fixed ones: " " 259, "h" 260, "i" 261, " h" 262, " hi" 263, "hi" 264.
  const auto tok = load(
      {{"tokenizer.bin",
        llama2c_bin({{" ", -1}, {"h", -2}, {"i", -3}, {" h", -4}, {" hi", -5}, {"hi", -4.5f}})}});
  CHECK(tok->vocab_size() == 265);
  // " h" and "hi" both exist: " h" scores -4 > -4.5, so " h" first, then " hi".
  CHECK(tok->encode("hi", kSpecial) == Ids{1, 263});
  CHECK(tok->encode("hi", kPlain) == Ids{263});
  CHECK(tok->encode("", kSpecial) == Ids{1});
  CHECK(tok->encode("\xC3\xA9", kPlain) == Ids{259, 0xC3 + 3, 0xA9 + 3});  // byte fallback
  CHECK(tok->decode({1, 263}, true) == "hi");  // run.c drops the space after BOS
  CHECK(tok->decode({263, 263}) == " hi hi");
  CHECK(tok->decode({1, 259, 0xC3 + 3, 0xA9 + 3}, true) == "\xC3\xA9");
  CHECK(tok->bos_id() == 1);
  CHECK(tok->eos_id() == 2);
  const std::string bin = llama2c_bin({{" ", -1}});
  CHECK_THAT(thrown<csa::FormatError>([&] {
               load({{"tok512.bin", bin.substr(0, bin.size() - 3)}});
             }),
             Catch::Contains("unit/tok512.bin") && Catch::Contains("truncated"));
  CHECK_THAT(thrown<csa::FormatError>([&] {
               load({{"tok512.bin", std::string("\0\0\0\0", 4)}});
             }),
             Catch::Contains("max_token_length"));
}

TEST_CASE("a corrupt tokenizer.model is a FormatError naming it", "[unit][tokenizer]") {
  std::string message;
  try {
    csa::Tokenizer::from_files({{"tokenizer.model", "definitely not a protobuf"}}, "broken");
  } catch (const csa::FormatError& e) {
    message = e.what();
  }
  CHECK_THAT(message, Catch::Contains("broken/tokenizer.model"));
}

// BpeModel on a Metaspace-like word (U+2581 runs, merges of merged tokens, stale heap entries):
// the ids HF's rule gives, derived by hand (lowest rank first, then leftmost).
TEST_CASE("BPE merges U+2581 runs and merged tokens by HF's rule", "[unit][tokenizer]") {
  const std::string s = "\xe2\x96\x81";  // U+2581, the Metaspace replacement
  csa::tok::BpeConfig c;
  c.vocab = {{"a", 0},     {"b", 1},           {s, 2},     {"ab", 3},
             {s + "a", 4}, {s + "a" + "b", 5}, {s + s, 6}, {"ab" + s, 7}};
  c.merges = {{"a", "b"}, {s, "a"}, {s + "a", "b"}, {s, s}, {"ab", s}};
  const csa::tok::BpeModel bpe(std::move(c), "test");
  const auto ids = [&](const std::string& word) {
    std::vector<int32_t> out;
    bpe.tokenize(word, out);
    return out;
  };
  // b and ▁ join only through the merged "ab"
  CHECK(ids("ab" + s + "b") == std::vector<int32_t>{7, 1});
  // a run of ▁ joins
  CHECK(ids("b" + s + s) == std::vector<int32_t>{1, 6});
  // "a b" (rank 0) twice; "▁ a" finds ab to its right (stale), the last ▁ a merges; then
  // "ab ▁" twice (the second ▁ of the run, whose right neighbour became ▁a)
  CHECK(ids("ab" + s + "ab" + s + s + "a") == std::vector<int32_t>{7, 7, 4});
  CHECK(ids("ba" + s + "a") == std::vector<int32_t>{1, 0, 4});
}

// The same on random merge tables: BpeModel against the rule written out (merge the lowest-rank
// adjacent pair, the leftmost among equals, until none is left), over random words.
TEST_CASE("BPE on random merge tables equals lowest rank first, leftmost first",
          "[unit][tokenizer]") {
  const std::string s = "\xe2\x96\x81";
  const std::vector<std::string> chars = {"a", "b", "c", s};
  std::mt19937 rng(3);
  for (int table = 0; table < 20; ++table) {
    csa::tok::BpeConfig c;
    std::vector<std::string> tokens = chars;
    for (const auto& t : tokens) c.vocab.emplace(t, static_cast<int32_t>(c.vocab.size()));
    std::map<std::pair<std::string, std::string>, size_t> rank;
    for (int m = 0; m < 40; ++m) {
      std::uniform_int_distribution<size_t> pick(0, tokens.size() - 1);
      const std::string l = tokens[pick(rng)], r = tokens[pick(rng)];
      if (rank.count({l, r}) != 0 || l.size() + r.size() > 12) continue;
      rank[{l, r}] = c.merges.size();
      c.merges.emplace_back(l, r);
      if (c.vocab.emplace(l + r, static_cast<int32_t>(c.vocab.size())).second)
        tokens.push_back(l + r);
    }
    const std::map<std::string, int32_t> vocab(c.vocab.begin(), c.vocab.end());
    const csa::tok::BpeModel bpe(std::move(c), "random");
    for (int w = 0; w < 50; ++w) {
      std::vector<std::string> sym;
      const int n = std::uniform_int_distribution<int>(1, 120)(rng);
      std::string word;
      for (int i = 0; i < n; ++i) {
        sym.push_back(chars[std::uniform_int_distribution<size_t>(0, chars.size() - 1)(rng)]);
        word += sym.back();
      }
      for (;;) {  // the rule
        size_t best = sym.size(), best_rank = 0;
        for (size_t i = 0; i + 1 < sym.size(); ++i) {
          auto it = rank.find({sym[i], sym[i + 1]});
          if (it != rank.end() && (best == sym.size() || it->second < best_rank))
            best = i, best_rank = it->second;
        }
        if (best == sym.size()) break;
        sym[best] += sym[best + 1];
        sym.erase(sym.begin() + static_cast<std::ptrdiff_t>(best) + 1);
      }
      std::vector<int32_t> want, got;
      for (const auto& t : sym) want.push_back(vocab.at(t));
      bpe.tokenize(word, got);
      INFO("table " << table << ", word " << word);
      REQUIRE(got == want);
    }
  }
}
