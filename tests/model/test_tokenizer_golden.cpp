// Tokenizer tests against reference ids: ids from the reference implementations (Hugging Face
// tokenizers / transformers, sentencepiece), written by scripts/make_tokenizer_fixtures.py into
// tests/fixtures/tokenizers/<name>.json, for the tokenizer files in ../shared (hence the model
// tier): every case of strings.json (ids, ids with the template, decode), and whole corpora
// (token count, sha256 of the int32 stream, head and tail).
// CSA_SHARED overrides "<source>/../shared"; CSA_TOKENIZER_FIXTURES overrides the fixture folder.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "csa/core/file.h"
#include "csa/core/hash.h"
#include "csa/core/json.h"
#include "csa/tokenizer/tokenizer.h"
#include "support.h"

namespace {

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

std::string fixture_dir() {
  return env_or("CSA_TOKENIZER_FIXTURES", csa::test::fixtures_dir() + "/tokenizers");
}

struct GoldenTokenizer {
  const char* name;
  const char* path;  // relative to the shared folder
};

// The tokenizers make_tokenizer_fixtures.py writes fixtures for, and where their files are.
const std::vector<GoldenTokenizer>& golden_tokenizers() {
  static const std::vector<GoldenTokenizer> kAll = {
      {"gpt2-mini", "models/gpt2-mini/tokenizer.json"},
      {"pythia-mini", "models/pythia-mini/tokenizer.json"},
      {"qwen2-mini", "models/qwen2-mini/tokenizer.json"},
      {"llama-mini", "models/llama-mini/tokenizer.json"},
      {"llama-mini-spm", "models/llama-mini/tokenizer.model"},
      {"llama2-spm", "tokenizers/llama2/tokenizer.model"},
      {"gpt2-50257", "tokenizers/gpt2"},
  };
  return kAll;
}

std::string show_ids(const std::vector<int32_t>& ids, size_t from, size_t to) {
  std::ostringstream s;
  s << "[";
  for (size_t i = from; i < std::min(to, ids.size()); ++i) s << (i > from ? ", " : "") << ids[i];
  s << "]";
  return s.str();
}

// "" when equal, else the first differing index and both id windows around it.
std::string id_difference(const std::vector<int32_t>& got, const std::vector<int32_t>& want) {
  if (got == want) return "";
  size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  const size_t from = i >= 4 ? i - 4 : 0, to = i + 8;
  std::ostringstream s;
  s << "first difference at index " << i << " (lengths " << got.size() << " vs " << want.size()
    << ")\n  got  [" << from << "..]: " << show_ids(got, from, to) << "\n  want [" << from
    << "..]: " << show_ids(want, from, to);
  return s.str();
}

std::vector<int32_t> id_vector(const csa::Json& j) { return j.get<std::vector<int32_t>>(); }

std::string sha256_int32le(const std::vector<int32_t>& ids) {
  std::string bytes(ids.size() * 4, '\0');
  for (size_t i = 0; i < ids.size(); ++i) {
    const auto v = static_cast<uint32_t>(ids[i]);
    for (int b = 0; b < 4; ++b) bytes[i * 4 + b] = static_cast<char>((v >> (8 * b)) & 0xFF);
  }
  return csa::sha256_hex(bytes);
}

// The committed fixture (scripts/make_tokenizer_fixtures.py): a missing one is a failure.
csa::Json load_fixture(const std::string& name) {
  const std::string path = fixture_dir() + "/" + name + ".json";
  INFO("tokenizer fixture " << path);
  REQUIRE(csa::file_exists(path));
  return csa::read_json_file(path);
}

std::unique_ptr<csa::Tokenizer> load_tokenizer(const GoldenTokenizer& g) {
  const std::string path = csa::test::shared_path(g.path);
  REQUIRE(csa::file_exists(path));
  return csa::Tokenizer::from_path(path);
}

}  // namespace

TEST_CASE("tokenizers match the reference ids on every fixture string", "[model][tokenizer]") {
  for (const GoldenTokenizer& g : golden_tokenizers()) {
    DYNAMIC_SECTION(g.name) {
      const csa::Json fixture = load_fixture(g.name);
      const auto tok = load_tokenizer(g);
      size_t failures = 0;
      for (const csa::Json& c : fixture.at("cases")) {
        const std::string text = c.at("text").get<std::string>();
        INFO(g.name << " (" << tok->description() << "), text " << csa::Json(text).dump());
        const auto ids = tok->encode(text, {false, false});
        const std::string plain = id_difference(ids, id_vector(c.at("ids")));
        CHECK(plain == "");
        const auto ids_special = tok->encode(text, {true, false});
        const std::string special = id_difference(ids_special, id_vector(c.at("ids_special")));
        CHECK(special == "");
        const std::string decoded = tok->decode(id_vector(c.at("ids")));
        CHECK(csa::Json(decoded).dump() == csa::Json(c.at("decoded").get<std::string>()).dump());
        failures += !plain.empty() || !special.empty();
      }
      CHECK(failures == 0);
    }
  }
}

TEST_CASE("tokenizers match the reference on whole corpora", "[model][tokenizer]") {
  for (const GoldenTokenizer& g : golden_tokenizers()) {
    DYNAMIC_SECTION(g.name) {
      const csa::Json fixture = load_fixture(g.name);
      const auto tok = load_tokenizer(g);
      for (const auto& [file, want] : fixture.at("corpora").items()) {
        INFO(g.name << " (" << tok->description() << "), corpus " << file);
        const std::string text = csa::read_file(csa::test::shared_path("corpora/" + file));
        const auto ids = tok->encode(text);
        CHECK(ids.size() == want.at("n_tokens").get<size_t>());
        const auto head = id_vector(want.at("head"));
        const auto tail = id_vector(want.at("tail"));
        const std::vector<int32_t> got_head(ids.begin(),
                                            ids.begin() + std::min(ids.size(), head.size()));
        const std::vector<int32_t> got_tail(ids.end() - std::min(ids.size(), tail.size()),
                                            ids.end());
        CHECK(id_difference(got_head, head) == "");
        CHECK(id_difference(got_tail, tail) == "");
        CHECK(sha256_int32le(ids) == want.at("sha256_int32le").get<std::string>());
        if (want.contains("decode_roundtrip"))  // the script decodes with special tokens kept
          CHECK((tok->decode(ids) == text) == want.at("decode_roundtrip").get<bool>());
      }
    }
  }
}
