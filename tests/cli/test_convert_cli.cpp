#include "cli/cli_support.h"
#include "csa/core/file.h"
#include "csa/io/safetensors.h"
#include "model_factory.h"

using namespace csa;

TEST_CASE("csa-convert: bad inputs give a clear message, a meaningful exit code, no output",
          "[cli]") {
  test::TempDir dir;
  const std::string out = dir.file("out.pt");
  auto expect = [&](const std::string& input, int code, const std::string& needle,
                    const std::string& extra = "") {
    test::RunResult r =
        test::run_app("csa-convert", test::quote(input) + " " + test::quote(out) + " " + extra);
    INFO(r.output);
    CHECK(r.exit_code == code);
    CHECK(r.output.find(needle) != std::string::npos);
    CHECK_FALSE(file_exists(out));
  };
  expect(dir.file("missing"), 3, "missing: no such file");

  Json cfg = test::tiny_config("llama");
  auto weights = test::tiny_weights(cfg);
  test::write_hf_dir(dir.path(), cfg, weights);
  // Truncated archive: convert once, cut the file, convert the cut copy.
  REQUIRE(
      test::run_app("csa-convert", test::quote(dir.path()) + " " + test::quote(dir.file("ok.pt")))
          .exit_code == 0);
  std::string bytes = read_file(dir.file("ok.pt"));
  test::write_text(dir.file("cut.pt"), bytes.substr(0, bytes.size() / 2));
  expect(dir.file("cut.pt"), 4, "truncated");

  // Safetensors header lying about sizes.
  std::string st = read_file(dir.file("model.safetensors"));
  test::write_text(dir.file("model.safetensors"), st.substr(0, st.size() - 10));
  expect(dir.path(), 4, "run past the end of the data");
  write_safetensors(dir.file("model.safetensors"), weights);

  // Unknown model_type.
  Json bad = cfg;
  bad["model_type"] = "mamba";
  test::write_text(dir.file("bad_config.json"), bad.dump());
  expect(dir.path(), 5, "model_type 'mamba' is not supported",
         "--config " + test::quote(dir.file("bad_config.json")));

  // Missing tensor, wrong shape.
  auto w = weights;
  w.erase("model.norm.weight");
  write_safetensors(dir.file("model.safetensors"), w);
  expect(dir.path(), 4, "tensor 'model.norm.weight' is missing");
  w = weights;
  w["model.norm.weight"] = at::zeros({3});
  write_safetensors(dir.file("model.safetensors"), w);
  expect(dir.path(), 4, "has shape [3]");

  // Unwritable output directory.
  write_safetensors(dir.file("model.safetensors"), weights);
  test::RunResult r = test::run_app("csa-convert", test::quote(dir.path()) + " /nonexistent/x.pt");
  CHECK(r.exit_code == 3);
  CHECK(r.output.find("/nonexistent") != std::string::npos);
}

TEST_CASE("csa-convert --help and --version", "[cli]") {
  test::RunResult h = test::run_app("csa-convert", "--help");
  CHECK(h.exit_code == 0);
  CHECK(h.output.find("Examples") != std::string::npos);
  test::RunResult v = test::run_app("csa-convert", "--version");
  CHECK(v.exit_code == 0);
  CHECK(v.output.find("csa ") != std::string::npos);
  test::RunResult bad = test::run_app("csa-convert", "--no-such-flag");
  CHECK(bad.exit_code != 0);
}
