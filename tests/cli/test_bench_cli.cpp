// csa-bench's modes on real layouts (configs/) and tiny random models: the JSON each writes and
// the flags each refuses.
#include "cli/cli_support.h"
#include "csa/core/json.h"
#include "model_factory.h"

using namespace csa;
using test::quote;
using test::run_app;

namespace {

Json bench_json(const std::string& args) {
  const test::RunResult r = run_app("csa-bench", args + " -q");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  return parse_json(r.output, "csa-bench output");
}

}  // namespace

TEST_CASE("csa-bench --config takes the head layout of a real model's config.json", "[cli]") {
  const std::string cfg = test::source_dir() + "/configs/llama-3.2-1b.json";
  const Json j = bench_json("--config " + quote(cfg) + " --ctx 16 --repeats 1");
  CHECK(j["heads"] == 32);
  CHECK(j["kv_heads"] == 8);
  CHECK(j["head_dim"] == 64);
  CHECK(j["model"]["model_type"] == "llama");
  // An explicit flag that agrees is accepted; one that disagrees is a usage error naming both.
  CHECK(bench_json("--config " + quote(cfg) + " --heads 32 --ctx 16 --repeats 1")["heads"] == 32);
  const test::RunResult r = run_app("csa-bench", "--config " + quote(cfg) + " --kv-heads 2");
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("--kv-heads 2 disagrees with --config") != std::string::npos);
  CHECK(r.output.find("num_key_value_heads 8") != std::string::npos);
}

TEST_CASE("csa-bench --forward, --save-random and --load on a tiny random model", "[cli]") {
  test::TempDir dir;
  const std::string cfg = dir.file("tiny.json");
  test::write_text(cfg, test::tiny_config("qwen2").dump(2));

  const Json f = bench_json("--forward --config " + quote(cfg) +
                            " --batch 2 --ctx 8 --repeats 1 --seed 5 --stored-dtype bfloat16");
  CHECK(f["mode"] == "forward");
  CHECK(f["tokens"] == 8);
  CHECK(f["batch"] == 2);
  CHECK(f["tokens_per_second"].get<double>() > 0);
  CHECK(f["flops_per_token"]["total"].get<double>() > f["flops_per_token"]["matmul"].get<double>());

  const Json s = bench_json("--save-random " + quote(dir.file("ck")) + " --config " + quote(cfg) +
                            " --seed 5");
  CHECK(s["stored_dtype"] == "bfloat16");
  const Json l = bench_json("--load " + quote(dir.file("ck")) + " --repeats 1");
  CHECK(l["mode"] == "load");
  CHECK(l["hash_bytes"] == s["bytes"]);
  // The same seed and stored dtype: the same weights, written or not.
  CHECK(l["weights_sha256"] == f["weights"]["weights_sha256"]);

  const std::vector<std::string> refused = {
      "--forward --load " + quote(dir.file("ck")),
      "--forward --config " + quote(cfg) + " --heads 4", "--forward",
      "--load " + quote(dir.file("ck")) + " --ctx 8", "--seed 3 --ctx 16"};
  for (const std::string& bad : refused) {
    INFO(bad);
    const test::RunResult r = run_app("csa-bench", bad);
    INFO(r.output);
    CHECK(r.exit_code == 2);
  }
}
