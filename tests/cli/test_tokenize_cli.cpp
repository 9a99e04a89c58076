// csa-tokenize as a user runs it: golden ids from the reference tokenizers on a Hugging Face
// directory and on a csa-convert archive, the eval protocol's BOS rule, --decode round trips,
// stdin, and bad inputs (exit code, message, no output file left).
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "cli/cli_support.h"
#include "cli/run_parallel.h"
#include "csa/core/file.h"
#include "csa/core/json.h"
#include "csa/tokenizer/tokenizer.h"
#include "model_factory.h"

using namespace csa;

namespace {

std::vector<int32_t> ids_in(const std::string& path) {
  return parse_json(read_file(path), path).get<std::vector<int32_t>>();
}

}  // namespace

TEST_CASE("csa-tokenize: golden ids on a HF directory and a csa-convert archive", "[cli]") {
  test::TempDir dir;
  const Json fixture = read_json_file(test::fixtures_dir() + "/tokenizers/gpt2-mini.json");
  // Every fixture string in one file, joined by <|endoftext|>: an added special token splits the
  // text before pre-tokenization, so the ids are each case's ids joined by its id (0).
  const std::string sep = "<|endoftext|>";
  const int32_t sep_id = 0;
  std::string text;
  std::vector<int32_t> want;
  size_t n_cases = 0;
  for (const Json& c : fixture.at("cases")) {
    const std::string t = c.at("text").get<std::string>();
    if (t.find(sep) != std::string::npos) continue;
    if (n_cases++ > 0) {
      text += sep;
      want.push_back(sep_id);
    }
    text += t;
    for (int32_t id : c.at("ids_special").get<std::vector<int32_t>>()) want.push_back(id);
  }
  REQUIRE(n_cases > 100);
  test::write_text(dir.file("cases.txt"), text);

  // The archive: a tiny synthetic GPT-2 carrying gpt2-mini's tokenizer files (converting the
  // real weights adds seconds and tests nothing more about tokenization).
  const std::string hf = dir.file("hf");
  REQUIRE(std::system(("mkdir -p " + test::quote(hf)).c_str()) == 0);
  test::write_hf_dir(hf, test::tiny_config("gpt2"), test::tiny_weights(test::tiny_config("gpt2")));
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
    test::write_text(hf + "/" + f,
                     read_file(test::shared_path(std::string("models/gpt2-mini/") + f)));
  test::RunResult conv = test::run_app(
      "csa-convert", test::quote(hf) + " " + test::quote(dir.file("model.pt")) + " -q");
  INFO(conv.output);
  REQUIRE(conv.exit_code == 0);

  // Ids to decode, as an array and as a --json object (the round trip's other half).
  test::write_text(dir.file("want.json"), Json(want).dump());
  test::write_text(dir.file("want_obj.json"),
                   Json{{"kind", "csa-tokenize"}, {"ids", want}}.dump(2));

  const std::string gpt2 = test::shared_path("models/gpt2-mini");
  auto runs = test::run_apps_parallel({
      {"csa-tokenize", test::quote(gpt2) + " " + test::quote(dir.file("cases.txt")) + " -o " +
                           test::quote(dir.file("hf.json"))},
      {"csa-tokenize", test::quote(dir.file("model.pt")) + " " +
                           test::quote(dir.file("cases.txt")) + " -o " +
                           test::quote(dir.file("pt.json"))},
      // stdin, --json with the counts and timing
      {"csa-tokenize", test::quote(dir.file("model.pt")) + " - --json -o " +
                           test::quote(dir.file("stdin.json")) + " < " +
                           test::quote(dir.file("cases.txt"))},
      {"csa-tokenize", test::quote(gpt2) + " " + test::quote(dir.file("want.json")) +
                           " --decode -o " + test::quote(dir.file("back.txt"))},
      {"csa-tokenize", test::quote(dir.file("model.pt")) + " " +
                           test::quote(dir.file("want_obj.json")) + " --decode -o " +
                           test::quote(dir.file("back2.txt"))},
  });
  for (auto& r : runs) {
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
  }
  std::vector<int32_t> got = ids_in(dir.file("hf.json"));
  CHECK(got.size() == want.size());
  CHECK(got == want);
  CHECK(ids_in(dir.file("pt.json")) == want);
  const Json j = read_json_file(dir.file("stdin.json"));
  CHECK(j.at("kind") == "csa-tokenize");
  CHECK(j.at("count").get<size_t>() == want.size());
  CHECK(j.at("ids").get<std::vector<int32_t>>() == want);
  CHECK(j.at("input").at("bytes").get<size_t>() == text.size());
  CHECK(j.at("input").at("path") == "<stdin>");
  CHECK(j.at("tokenizer").at("source").get<std::string>().find("torchscript") != std::string::npos);
  CHECK(j.at("tokenizer").at("vocab_size") == 8192);
  CHECK(j.at("add_special_tokens") == true);
  CHECK(j.at("encode_seconds").get<double>() >= 0);
  CHECK(j.at("run").at("tool") == "csa-tokenize");
  // --decode gives the text back (byte-level BPE is lossless).
  CHECK(read_file(dir.file("back.txt")) == text);
  CHECK(read_file(dir.file("back2.txt")) == text);
}

TEST_CASE("csa-tokenize: the template BOS of SentencePiece and llama2.c, --no-add-special",
          "[cli]") {
  test::TempDir dir;
  const Json fixture = read_json_file(test::fixtures_dir() + "/tokenizers/llama-mini-spm.json");
  const std::string text = "The quick brown fox jumps over the lazy dog.";
  Json want;
  for (const Json& c : fixture.at("cases"))
    if (c.at("text") == text) want = c;
  REQUIRE(want.is_object());
  test::write_text(dir.file("in.txt"), text);
  test::write_text(dir.file("ids.txt"), "1 346\n306\t414\n");
  const std::string in = test::quote(dir.file("in.txt"));
  const std::string stories = test::shared_path("models/stories260K/stories260K.bin");
  auto runs = test::run_apps_parallel({
      {"csa-tokenize", test::quote(test::shared_path("models/llama-mini")) + " " + in + " -q"},
      {"csa-tokenize",
       test::quote(test::shared_path("models/llama-mini")) + " " + in + " -q --no-add-special"},
      {"csa-tokenize", test::quote(stories) + " " + in + " -q"},
      // Whitespace-separated ids decode too; --skip-special drops the BOS.
      {"csa-tokenize", test::quote(stories) + " - --decode --skip-special -q < " +
                           test::quote(dir.file("ids.txt"))},
  });
  for (auto& r : runs) INFO(r.output);
  REQUIRE(runs[0].exit_code == 0);
  CHECK(parse_json(runs[0].output, "out").get<std::vector<int32_t>>() ==
        want.at("ids_special").get<std::vector<int32_t>>());
  CHECK(parse_json(runs[1].output, "out").get<std::vector<int32_t>>() ==
        want.at("ids").get<std::vector<int32_t>>());
  // llama2.c: the checkpoint's tok512.bin, BOS (1) first, as the library encodes it.
  REQUIRE(runs[2].exit_code == 0);
  auto tok = Tokenizer::from_path(test::shared_path("models/stories260K/tok512.bin"));
  const std::vector<int32_t> stories_ids =
      parse_json(runs[2].output, "out").get<std::vector<int32_t>>();
  CHECK(stories_ids == tok->encode(text));
  CHECK(stories_ids.front() == 1);
  REQUIRE(runs[3].exit_code == 0);
  CHECK(runs[3].output == tok->decode({1, 346, 306, 414}, true));
}

TEST_CASE("csa-tokenize: bad inputs give a clear message, the exit code, no output", "[cli]") {
  test::TempDir dir;
  const std::string gpt2 = test::quote(test::shared_path("models/gpt2-mini"));
  const std::string out = dir.file("out.json");
  test::write_text(dir.file("bad.txt"), std::string("ab\xff"
                                                    "cd"));
  test::write_text(dir.file("ok.txt"),
                   "ab\xEF\xBF\xBD"
                   "cd");  // what the replacement gives
  test::write_text(dir.file("words.txt"), "1 2 x 3");
  test::write_text(dir.file("oov.txt"), "[5, 99999]");
  test::write_text(dir.file("huge.txt"), "5 123456789012345678901234567890");
  const std::string tiny = dir.file("tiny");  // a model without tokenizer files
  REQUIRE(std::system(("mkdir -p " + test::quote(tiny)).c_str()) == 0);
  test::write_hf_dir(tiny, test::tiny_config("gpt2"),
                     test::tiny_weights(test::tiny_config("gpt2")));

  struct Case {
    std::string args;
    int code;
    std::string needle;
  };
  const std::string o = " -o " + test::quote(out);
  const std::vector<Case> cases = {
      {test::quote(dir.file("nope")) + " " + test::quote(dir.file("ok.txt")) + o, 3,
       "nope: no such file"},
      {gpt2 + " " + test::quote(dir.file("missing.txt")) + o, 3, "missing.txt"},
      {gpt2 + " " + test::quote(dir.file("bad.txt")) + o, 6, "not valid UTF-8 at byte 2"},
      {gpt2 + " " + test::quote(dir.file("words.txt")) + " --decode" + o, 6,
       "not an integer at byte 4"},
      {gpt2 + " " + test::quote(dir.file("oov.txt")) + " --decode" + o, 6,
       "token id 99999 (at index 1) is outside the tokenizer's vocabulary [0, 8192)"},
      {gpt2 + " " + test::quote(dir.file("huge.txt")) + " --decode" + o, 6,
       "out of range at byte 2"},
      {test::quote(tiny) + " " + test::quote(dir.file("ok.txt")) + o, 6, "no tokenizer files"},
      {gpt2 + " " + test::quote(dir.file("ok.txt")) + " -o /nonexistent/dir/out.json", 3,
       "/nonexistent/dir"},
  };
  std::vector<std::pair<std::string, std::string>> cmds;
  for (const Case& c : cases) cmds.emplace_back("csa-tokenize", c.args);
  // --replace-invalid-utf8 tokenizes what Python's errors="replace" gives.
  cmds.emplace_back("csa-tokenize",
                    gpt2 + " " + test::quote(dir.file("bad.txt")) + " --replace-invalid-utf8 -q");
  auto runs = test::run_apps_parallel(cmds);
  for (size_t i = 0; i < cases.size(); ++i) {
    INFO("csa-tokenize " << cases[i].args << "\n" << runs[i].output);
    CHECK(runs[i].exit_code == cases[i].code);
    CHECK(runs[i].output.find(cases[i].needle) != std::string::npos);
  }
  CHECK_FALSE(file_exists(out));
  const auto& replaced = runs[cases.size()];
  INFO(replaced.output);
  REQUIRE(replaced.exit_code == 0);
  auto tok = Tokenizer::from_path(test::shared_path("models/gpt2-mini"));
  CHECK(parse_json(replaced.output, "out").get<std::vector<int32_t>>() ==
        tok->encode(read_file(dir.file("ok.txt"))));
}
