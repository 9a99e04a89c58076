// Tokenizer tests on the shared tokenizer files (../shared, hence the model tier) that need no
// reference fixture: llama2.c's tok512.bin against a literal port of run.c's encode(), the
// stories260K sentence, which file kind from_path picks, and decode(encode(corpus)) == corpus for
// every byte-level BPE tokenizer.
#include <catch2/catch.hpp>
#include <cstring>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "csa/core/error.h"
#include "csa/core/file.h"
#include "csa/io/sentencepiece.h"
#include "csa/tokenizer/tokenizer.h"
#include "support.h"

namespace {

using csa::test::shared_path;

// run.c's encode(), kept literal (sorted-vocab lookup replaced by a linear search over a map of
// first occurrences, O(n^2) merges): the reference for the heap-based implementation.
struct RunC {
  std::vector<std::string> vocab;
  std::vector<float> scores;

  explicit RunC(const std::string& bin) {
    size_t pos = 4;
    while (pos < bin.size()) {
      float score;
      int32_t len;
      std::memcpy(&score, bin.data() + pos, 4);
      std::memcpy(&len, bin.data() + pos + 4, 4);
      vocab.emplace_back(bin, pos + 8, static_cast<size_t>(len));
      scores.push_back(score);
      pos += 8 + static_cast<size_t>(len);
    }
  }
  int lookup(const std::string& s) const {
    for (size_t i = 0; i < vocab.size(); ++i)
      if (vocab[i] == s) return static_cast<int>(i);
    return -1;
  }
  std::vector<int32_t> encode(const std::string& text, bool bos) const {
    std::vector<int32_t> tokens;
    if (bos) tokens.push_back(1);
    if (!text.empty()) tokens.push_back(lookup(" "));
    std::string buf;
    for (size_t c = 0; c < text.size(); ++c) {
      if ((static_cast<unsigned char>(text[c]) & 0xC0) != 0x80) buf.clear();
      buf += text[c];
      if (c + 1 < text.size() && (static_cast<unsigned char>(text[c + 1]) & 0xC0) == 0x80 &&
          buf.size() < 4)
        continue;
      const int id = lookup(buf);
      if (id != -1) {
        tokens.push_back(id);
      } else {
        for (char b : buf) tokens.push_back(static_cast<unsigned char>(b) + 3);
      }
      buf.clear();
    }
    while (true) {
      float best_score = -1e10f;
      int best_id = -1, best_idx = -1;
      for (size_t i = 0; i + 1 < tokens.size(); ++i) {
        const int id = lookup(vocab[tokens[i]] + vocab[tokens[i + 1]]);
        if (id != -1 && scores[id] > best_score) {
          best_score = scores[id];
          best_id = id;
          best_idx = static_cast<int>(i);
        }
      }
      if (best_idx == -1) break;
      tokens[best_idx] = best_id;
      tokens.erase(tokens.begin() + best_idx + 1);
    }
    return tokens;
  }
};

std::string show(const std::vector<int32_t>& ids) {
  std::ostringstream s;
  for (size_t i = 0; i < ids.size(); ++i) s << (i ? " " : "") << ids[i];
  return s.str();
}

// Up to `n` lines of the corpus, spread over it, each at most 300 bytes.
std::vector<std::string> sample_lines(const std::string& text, size_t n) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  size_t k = 0;
  while (std::getline(in, line))
    if (k++ % 37 == 0 && line.size() <= 300) lines.push_back(line);
  if (lines.size() > n) lines.resize(n);
  return lines;
}

const char* kStory =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. "
    "One day, she saw a big, red ball.";

}  // namespace

TEST_CASE("llama2.c tok512.bin encodes as run.c does", "[model][tokenizer]") {
  const std::string path = shared_path("models/stories260K/tok512.bin");
  REQUIRE(csa::file_exists(path));
  const RunC ref(csa::read_file(path));
  const auto tok = csa::Tokenizer::from_path(path);
  CHECK(tok->vocab_size() == 512);
  std::vector<std::string> texts = {kStory, "", " ", "  two  spaces ",
                                    "caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80"};
  for (const char* corpus : {"wikitext2-test.raw", "code-heldout.txt", "docs-heldout.txt"})
    for (auto& l : sample_lines(csa::read_file(shared_path(std::string("corpora/") + corpus)), 40))
      texts.push_back(l);
  for (const std::string& text : texts) {
    for (bool bos : {false, true}) {
      INFO("text \"" << text << "\", bos " << bos);
      const auto want = ref.encode(text, bos);
      const auto got = tok->encode(text, {bos, false});
      CHECK(show(got) == show(want));
    }
  }
}

TEST_CASE("stories260K's sentence survives tok512.bin encode and decode", "[model][tokenizer]") {
  const auto tok = csa::Tokenizer::from_path(shared_path("models/stories260K/tok512.bin"));
  const auto ids = tok->encode(kStory);
  REQUIRE(ids.front() == 1);
  CHECK(tok->decode(ids, true) == kStory);
  // What run.c prints for generated ids: the space after BOS is dropped, nothing else.
  CHECK(tok->decode(ids, false) == std::string("\n<s>\n") + kStory);
}

TEST_CASE("from_path picks the tokenizer kind of each shared model", "[model][tokenizer]") {
  struct Expect {
    const char* path;
    const char* description_prefix;
  };
  for (const Expect& e :
       {Expect{"models/gpt2-mini", "tokenizer.json"}, Expect{"models/qwen2-mini", "tokenizer.json"},
        Expect{"tokenizers/gpt2", "gpt2 vocab+merges"},
        Expect{"tokenizers/gpt2/vocab.bpe", "gpt2 vocab+merges"},
        Expect{"models/stories260K", "llama2.c"}, Expect{"tokenizers/llama2", "sentencepiece"},
        Expect{"models/llama-mini", "sentencepiece"}}) {  // its tokenizer.json is a stub
    INFO(e.path);
    CHECK_THAT(csa::Tokenizer::from_path(shared_path(e.path))->description(),
               Catch::StartsWith(e.description_prefix));
  }
  const auto gpt2 = csa::Tokenizer::from_path(shared_path("tokenizers/gpt2"));
  CHECK(gpt2->vocab_size() == 50257);
  CHECK(gpt2->eos_id() == 50256);
  CHECK(gpt2->encode("Hello world<|endoftext|>", {false, false}) ==
        std::vector<int32_t>{15496, 995, 50256});
  const auto llama2 = csa::Tokenizer::from_path(shared_path("tokenizers/llama2"));
  CHECK(llama2->bos_id() == 1);
  CHECK(llama2->eos_id() == 2);
  CHECK(llama2->encode("Hello", {true, false}).front() == 1);
  CHECK_THROWS_AS(csa::Tokenizer::from_path(shared_path("no/such/dir")), csa::IoError);
}

TEST_CASE("byte-level BPE tokenizers round-trip every corpus", "[model][tokenizer]") {
  for (const char* path :
       {"models/gpt2-mini", "models/pythia-mini", "models/qwen2-mini", "tokenizers/gpt2"}) {
    const auto tok = csa::Tokenizer::from_path(shared_path(path));
    for (const char* corpus :
         {"wikitext2-test.raw", "wikitext2-valid.tokens", "code-heldout.txt", "docs-heldout.txt"}) {
      INFO(path << " on " << corpus);
      const std::string text = csa::read_file(shared_path(std::string("corpora/") + corpus));
      CHECK(tok->decode(tok->encode(text, {false, false})) == text);
    }
  }
}

// SentencePieceModel::encode cuts long texts into parts at single spaces when the model allows it
// (split_at_spaces: identity normalizer, whitespace as prefix, no piece with U+2581 after another
// character). The parts must give the library's ids for the whole text, also on texts made to
// stress the cut: runs of spaces, literal U+2581 before and after spaces, newlines, tabs, long
// stretches without a space, characters outside the vocabulary (byte fallback), digits.
TEST_CASE("SentencePiece encodes long texts in parts with the whole text's ids",
          "[model][tokenizer]") {
  const std::vector<std::string> words = {"the",
                                          "a",
                                          "Ġx",
                                          "\xe2\x96\x81",
                                          "\xe2\x96\x81\xe2\x96\x81",
                                          "token",
                                          "12345",
                                          "\n",
                                          "\t",
                                          "\xe4\xb8\xad\xe6\x96\x87",
                                          "\xf0\x9f\x98\x80",
                                          "naïve",
                                          "x\xe2\x96\x81y",
                                          "--",
                                          "(a)",
                                          std::string(600, 'z')};
  const std::vector<std::string> gaps = {" ", " ", " ", "  ", "   ", "", "\n", " \n "};
  std::mt19937 rng(7);
  std::string text;
  while (text.size() < 60000) {
    text += words[std::uniform_int_distribution<size_t>(0, words.size() - 1)(rng)];
    text += gaps[std::uniform_int_distribution<size_t>(0, gaps.size() - 1)(rng)];
  }
  for (const char* file :
       {"models/llama-mini/tokenizer.model", "tokenizers/llama2/tokenizer.model"}) {
    INFO(file);
    const csa::SentencePieceModel model(csa::read_file(shared_path(file)), file);
    CHECK(model.split_at_spaces());  // both are identity-normalized Llama models
    for (size_t cut : {size_t{4097}, size_t{20000}, text.size()}) {
      const std::string_view t(text.data(), cut);
      CHECK(model.encode(t) == model.encode_whole(t));
    }
    // The first space past the part size right after a literal U+2581: no cut there (the
    // space's U+2581 and the literal one form a piece)
    const std::string run = std::string(5000, 'z') + "\xe2\x96\x81 word " + std::string(5000, 'y');
    CHECK(model.encode(run) == model.encode_whole(run));
  }
}
