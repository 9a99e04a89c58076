// A replay of the committed fuzz seed corpora (tests/fuzz/corpus/<target>/*, docs/robustness.md)
// through the parsers the fuzz targets drive, so that the regular and the ASan/UBSan test runs
// cover them without libFuzzer: only typed csa errors, never an internal one, may escape.
#include <dirent.h>

#include <algorithm>
#include <functional>

#include "csa/calib/policy.h"
#include "csa/core/error.h"
#include "csa/core/file.h"
#include "csa/core/json.h"
#include "csa/core/utf8.h"
#include "csa/io/pickle.h"
#include "csa/io/safetensors.h"
#include "csa/io/torchscript.h"
#include "csa/model/config.h"
#include "csa/tokenizer/tokenizer.h"
#include "support.h"

using namespace csa;

namespace {

std::shared_ptr<const MappedFile> bytes(const std::string& label, const std::string& data) {
  return MappedFile::from_bytes(label, data);
}

PyRef unpickle_bytes(const std::string& program) {
  return unpickle(program, "test.pkl", [](const std::string&, at::ScalarType dtype, int64_t n) {
    return at::zeros({n}, at::TensorOptions().dtype(dtype));
  });
}

std::vector<std::string> corpus_files(const std::string& target) {
  const std::string dir = test::source_dir() + "/tests/fuzz/corpus/" + target;
  std::vector<std::string> files;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.') files.push_back(dir + "/" + e->d_name);
    closedir(d);
  }
  std::sort(files.begin(), files.end());
  return files;
}

// Runs `parse` on every seed of `target`; a csa error other than an internal one is fine.
void replay(const std::string& target, const std::function<void(const std::string&)>& parse) {
  const auto files = corpus_files(target);
  CHECK(!files.empty());
  for (const auto& f : files) {
    INFO(f);
    try {
      parse(read_file(f));
    } catch (const Error& e) {
      CHECK(e.kind() != ErrorKind::kInternal);
    }
  }
}

}  // namespace

TEST_CASE("the fuzz seed corpora parse or fail with typed errors", "[golden]") {
  replay("safetensors", [](const std::string& b) { parse_safetensors(bytes("seed", b)); });
  replay("config", [](const std::string& b) { parse_model_config(parse_json(b, "seed"), "seed"); });
  replay("policy", [](const std::string& b) {
    Policy p = Policy::from_json(parse_json(b, "seed"), "seed");
    CHECK(dump_json(Policy::from_json(p.to_json(), "again").to_json()) == dump_json(p.to_json()));
  });
  replay("pickle", [](const std::string& b) { unpickle_bytes(b); });
  replay("torchscript", [](const std::string& b) { read_torchscript(bytes("seed.pt", b)); });
  auto tok =
      Tokenizer::from_path(test::fixtures_dir() + "/tokenizers/byte-level-small/tokenizer.json");
  replay("tokenizer", [&](const std::string& b) {
    // Seeds whose first byte is even are raw text (fuzz_tokenizer.cpp): lossless round trip.
    if (b.empty() || b[0] % 2 != 0) return;
    const std::string text = b.substr(1);
    if (!find_invalid_utf8(text)) {
      CHECK(tok->decode(tok->encode(text)) == text);
    } else {
      CHECK_THROWS_AS(tok->encode(text), InputError);
      EncodeOptions lenient;
      lenient.replace_invalid_utf8 = true;
      CHECK(tok->decode(tok->encode(text, lenient)) == replace_invalid_utf8(text));
    }
  });
}
