// Regression tests for what fuzzing and the sanitizer job found in the file parsers
// (docs/robustness.md): hand-made inputs, one per bug: each crashed, hung, leaked, hit undefined
// behaviour or let an untyped exception escape before its fix; now a typed csa error.
// (The replay of the committed fuzz seed corpora is tests/golden/test_fuzz_seeds.cpp.)
#include <cstdint>

#include "csa/calib/policy.h"
#include "csa/core/error.h"
#include "csa/core/file.h"
#include "csa/core/json.h"
#include "csa/io/pickle.h"
#include "csa/io/safetensors.h"
#include "csa/io/torchscript.h"
#include "csa/io/zip.h"
#include "csa/model/config.h"
#include "support.h"

using namespace csa;
using namespace std::string_literals;  // "...\x00..."s keeps the NUL bytes

namespace {

std::string le(uint64_t v, int bytes) {
  std::string s;
  for (int i = 0; i < bytes; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return s;
}

// Pickle pieces: a BINUNICODE string and a LONG1 8-byte integer.
std::string pstr(const std::string& s) { return "X" + le(s.size(), 4) + s; }
std::string plong(uint64_t v) { return "\x8a\x08" + le(v, 8); }

// torch._utils._rebuild_tensor_v2(storage(key, numel), offset 0, sizes, strides, False, {})
std::string ptensor(const std::string& storage_type, uint64_t numel,
                    const std::vector<uint64_t>& sizes, const std::vector<uint64_t>& strides) {
  std::string p = "ctorch._utils\n_rebuild_tensor_v2\n((" + pstr("storage") + "ctorch\n" +
                  storage_type + "\n" + pstr("0") + pstr("cpu") + plong(numel) + "tQK\x00("s;
  for (uint64_t s : sizes) p += plong(s);
  p += "t(";
  for (uint64_t s : strides) p += plong(s);
  return p + "t\x89}tR";
}

// A ZIP of stored entries (CRCs left 0: csa does not check them).
std::string zip_stored(const std::vector<std::pair<std::string, std::string>>& entries) {
  std::string body, central;
  for (const auto& [name, data] : entries) {
    const uint64_t offset = body.size();
    body += le(0x04034b50, 4) + le(20, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(0, 4) +
            le(data.size(), 4) + le(data.size(), 4) + le(name.size(), 2) + le(0, 2) + name + data;
    central += le(0x02014b50, 4) + le(20, 2) + le(20, 2) + le(0, 2) + le(0, 2) + le(0, 4) +
               le(0, 4) + le(data.size(), 4) + le(data.size(), 4) + le(name.size(), 2) + le(0, 2) +
               le(0, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(offset, 4) + name;
  }
  return body + central + le(0x06054b50, 4) + le(0, 2) + le(0, 2) + le(entries.size(), 2) +
         le(entries.size(), 2) + le(central.size(), 4) + le(body.size(), 4) + le(0, 2);
}

std::shared_ptr<const MappedFile> bytes(const std::string& label, const std::string& data) {
  return MappedFile::from_bytes(label, data);
}

PyRef unpickle_bytes(const std::string& program) {
  return unpickle(program, "test.pkl", [](const std::string&, at::ScalarType dtype, int64_t n) {
    return at::zeros({n}, at::TensorOptions().dtype(dtype));
  });
}

Json policy_json() {
  Json stats = Json::array({Json::array({1.0, 2.0})});
  return Json{{"schema_version", 1},
              {"kind", "csa-policy"},
              {"model", {{"name", "m"}, {"family", "llama"}, {"n_layer", 1}, {"n_head", 2}}},
              {"k_max", 8},
              {"budgets", Json::array({Json::array({4, 8})})},
              {"metric", {{"name", "effective_keys"}}},
              {"allocation", {{"floor", 4}}},
              {"statistics",
               {{"effective_keys", stats},
                {"mass_keys", stats},
                {"entropy", stats},
                {"causal_keys", stats}}}};
}

}  // namespace

TEST_CASE("MappedFile::from_bytes reads like a file", "[unit]") {
  auto f = MappedFile::from_bytes("mem.bin", std::string("ab\0c", 4));
  CHECK(f->path() == "mem.bin");
  CHECK(f->view() == std::string("ab\0c", 4));
  CHECK(MappedFile::from_bytes("empty", "")->size() == 0);
}

TEST_CASE("JSON: overflowing numbers and deep nesting are FormatErrors", "[unit]") {
  // nlohmann throws out_of_range (not parse_error) for 1e999: it escaped untyped (fuzz_config).
  CHECK_THROWS_AS(parse_json("[1e999]", "x.json"), FormatError);
  CHECK_THROWS_WITH(parse_json("{\"a\": -1e400}", "x.json"), Catch::Contains("x.json"));
  // 100k levels: copying or dumping such a value recursed past the stack.
  CHECK_THROWS_WITH(parse_json(std::string(100000, '['), "deep.json"),
                    Catch::Contains("deep.json") && Catch::Contains("nested deeper"));
  CHECK_NOTHROW(parse_json(std::string(500, '[') + std::string(500, ']'), "ok.json"));
  CHECK_NOTHROW(parse_json("[\"" + std::string(2000, '[') + "\"]", "in-string.json"));
}

TEST_CASE("JsonReader::get_int refuses numbers outside int64", "[unit]") {
  const Json j = parse_json(
      R"({"big": 1e300, "neg": -1e300, "u": 18446744073709551615, "two": 2.0, "half": 2.5})", "j");
  JsonReader r(j, "j");
  CHECK_THROWS_AS(r.get_int("big"), FormatError);  // was a float-to-int64 overflow (UB)
  CHECK_THROWS_AS(r.get_int("neg"), FormatError);
  CHECK_THROWS_WITH(r.get_int("u"), Catch::Contains("out of range"));  // was read as -1
  CHECK(r.get_int("two") == 2);
  CHECK_THROWS_AS(r.get_int("half"), FormatError);
}

TEST_CASE("safetensors: shape x dtype size overflowing 64 bits is refused", "[unit]") {
  // 2^61 F64 elements are 2^64 bytes, which wrapped to 0 = the span [0, 0]: a 2^61-element view
  // of an empty data section was accepted.
  const std::string header =
      R"({"a": {"dtype": "F64", "shape": [2305843009213693952], "data_offsets": [0, 0]}})";
  const std::string file = le(header.size(), 8) + header;
  CHECK_THROWS_WITH(parse_safetensors(bytes("wrap.safetensors", file)),
                    Catch::Contains("wrap.safetensors") && Catch::Contains("over 2^64"));
}

TEST_CASE("ZIP: offsets near 2^64 are range-checked without wrapping", "[unit]") {
  // A ZIP64 locator pointing at 2^64 - 2: `offset + 4 > size` wrapped to 2 > size = false and
  // the reader loaded from 2 bytes below the start of the map (a wild read).
  const std::string locator =
      le(0x07064b50, 4) + le(0, 4) + le(0xFFFFFFFFFFFFFFFEull, 8) + le(1, 4);
  const std::string eocd = le(0x06054b50, 4) + le(0, 2) + le(0, 2) + le(0xFFFF, 2) + le(0xFFFF, 2) +
                           le(0xFFFFFFFF, 4) + le(0xFFFFFFFF, 4) + le(0, 2);
  CHECK_THROWS_WITH(ZipArchive::open(bytes("wild.pt", locator + eocd)),
                    Catch::Contains("wild.pt") && Catch::Contains("truncated"));
}

TEST_CASE("ZIP: a deflated entry cannot claim more than DEFLATE can produce", "[unit]") {
  // fuzz_torchscript: a 3 KB archive whose entry claimed 4 GB made read() allocate 4 GB.
  auto zip_with = [](uint64_t claimed) {
    const std::string hello("\xcb\x48\xcd\xc9\xc9\x07\x00", 7);  // raw DEFLATE of "hello"
    std::string z = zip_stored({{"archive/extra/x", hello}});
    // Turn the entry into a deflated one (method 8, local and central) claiming `claimed` bytes.
    z.replace(8, 2, le(8, 2));
    const size_t central = z.find(le(0x02014b50, 4));
    z.replace(central + 10, 2, le(8, 2));
    z.replace(central + 24, 4, le(claimed, 4));
    return z;
  };
  ZipArchive ok = ZipArchive::open(bytes("ok.zip", zip_with(5)));
  CHECK(ok.read(ok.entries().at(0)) == "hello");
  ZipArchive bomb = ZipArchive::open(bytes("bomb.zip", zip_with(0xF0000000u)));
  CHECK_THROWS_WITH(bomb.read(bomb.entries().at(0)),
                    Catch::Contains("bomb.zip") && Catch::Contains("implausible size"));
}

TEST_CASE("TorchScript: a storage whose byte size overflows is refused", "[unit]") {
  // 2^61 doubles need 2^64 bytes, which wrapped to 0 <= the record's 8 bytes: the tensor viewed
  // 2^61 elements of an 8-byte record.
  const std::string pkl = "\x80\x02}(" + pstr("w") +
                          ptensor("DoubleStorage", uint64_t(1) << 61, {uint64_t(1) << 61}, {1}) +
                          "u.";
  const std::string zip = zip_stored({{"archive/data.pkl", pkl}, {"archive/data/0", le(0, 8)}});
  CHECK_THROWS_WITH(read_torchscript(bytes("big.pt", zip)),
                    Catch::Contains("big.pt") && Catch::Contains("storage record"));
  // The same archive with an honest size loads.
  const std::string ok = "\x80\x02}(" + pstr("w") + ptensor("DoubleStorage", 1, {1}, {1}) + "u.";
  auto a = read_torchscript(
      bytes("ok.pt", zip_stored({{"archive/data.pkl", ok}, {"archive/data/0", le(0, 8)}})));
  CHECK(a.tensors.at("w").tensor.numel() == 1);
}

TEST_CASE("TorchScript: shared submodules cannot make the tensor walk exponential", "[unit]") {
  // d0 = {}, d(k+1) = {"a": dk, "b": dk}: 2^40 paths from 40 small dicts. The walk never ended.
  std::string pkl = "\x80\x02}q\x00"s;
  for (int k = 0; k < 40; ++k)
    pkl += "}(" + pstr("a") + "h" + std::string(1, static_cast<char>(k)) + pstr("b") + "h" +
           std::string(1, static_cast<char>(k)) + "uq" + std::string(1, static_cast<char>(k + 1));
  pkl += ".";
  // Memo keys 1..40 are set by the BINPUTs above; the last dict is the result.
  CHECK_THROWS_WITH(read_torchscript(bytes("shared.pt", zip_stored({{"archive/data.pkl", pkl}}))),
                    Catch::Contains("too many attributes"));
}

TEST_CASE("pickle: cycles, deep nesting and overflowing views are FormatErrors", "[unit]") {
  // A list appended to itself through the memo: a shared_ptr cycle that leaked (LeakSanitizer).
  CHECK_THROWS_WITH(unpickle_bytes("\x80\x02]q\x00h\x00"
                                   "a."s),
                    Catch::Contains("cycle"));
  // 100k nested lists: freeing them recursed once per level, past the stack.
  CHECK_THROWS_WITH(
      unpickle_bytes("\x80\x02" + std::string(100000, ']') + std::string(99999, 'a') + "."),
      Catch::Contains("deeper than"));
  // (2^62 - 1) x 2^62 strides overflowed int64 in the bounds check (undefined behaviour).
  const uint64_t big = uint64_t(1) << 62;
  CHECK_THROWS_WITH(
      unpickle_bytes("\x80\x02" + ptensor("FloatStorage", 4, {big, 2}, {big, 1}) + "."),
      Catch::Contains("runs past its storage"));
  // Shared (acyclic) values are fine, and what is not returned is freed.
  PyRef r = unpickle_bytes("\x80\x02]q\x00h\x00h\x00\x86."s);
  REQUIRE(r->kind == PyValue::Kind::kTuple);
  CHECK(r->items.at(0) == r->items.at(1));
}

TEST_CASE("config.json: sizes too large to compute with are FormatErrors", "[unit]") {
  auto parse = [](const std::string& text) {
    return parse_model_config(parse_json(text, "c"), "c");
  };
  const std::string gpt2 =
      R"({"model_type": "gpt2", "n_layer": 1, "n_head": 1, "n_positions": 8, "vocab_size": 8,
          "activation_function": "gelu_new", "n_embd": )";
  CHECK_NOTHROW(parse(gpt2 + "4}"));
  // 4 * n_embd (the default n_inner) overflowed int64.
  CHECK_THROWS_WITH(parse(gpt2 + "4611686018427387904}"), Catch::Contains("implausibly large"));
  CHECK_THROWS_WITH(parse(gpt2 + "-9223372036854775808}"), Catch::Contains("implausibly large"));
  CHECK_THROWS_AS(parse(gpt2 + "1e300}"), FormatError);
  // Each size fits, their product does not: vocab_size x n_embd elements.
  CHECK_THROWS_WITH(parse(R"({"model_type": "gpt2", "n_layer": 1, "n_head": 1, "n_positions": 8,
                              "vocab_size": 2147483648, "activation_function": "gelu_new",
                              "n_embd": 2147483648})"),
                    Catch::Contains("vocab_size x hidden_size"));
}

TEST_CASE("policy JSON: missing blocks and bad model fields are typed errors", "[unit]") {
  CHECK_NOTHROW(Policy::from_json(policy_json(), "p.json"));
  for (const char* key : {"model", "budgets", "statistics", "metric", "allocation"}) {
    INFO(key);
    Json j = policy_json();
    j.erase(key);  // budgets / model escaped as nlohmann out_of_range
    CHECK_THROWS_AS(Policy::from_json(j, "p.json"), FormatError);
  }
  Json j = policy_json();
  j["statistics"].erase("entropy");
  CHECK_THROWS_WITH(Policy::from_json(j, "p.json"), Catch::Contains("statistics.entropy"));
  // n_layer 0 made every grid empty and the reader allocated n_head cells anyway.
  j = policy_json();
  j["model"]["n_layer"] = 0;
  j["model"]["n_head"] = int64_t(1) << 60;
  j["budgets"] = Json::array();
  CHECK_THROWS_WITH(Policy::from_json(j, "p.json"), Catch::Contains("model.n_layer"));
  // Fields that recapped() / check_model() read with Json::value() threw type_error there.
  j = policy_json();
  j["model"]["n_head_kv"] = "two";
  CHECK_THROWS_WITH(Policy::from_json(j, "p.json"), Catch::Contains("model.n_head_kv"));
  j = policy_json();
  j["model"]["family"] = 3;
  CHECK_THROWS_WITH(Policy::from_json(j, "p.json"), Catch::Contains("model.family"));
}
