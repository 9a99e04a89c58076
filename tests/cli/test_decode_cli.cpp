// Page-granular selection and paged decoding from the command line (docs/decoding.md): a policy
// applied page by page in csa-eval, decoded over a paged KV cache in csa-generate, timed by
// csa-bench --decode; bad selections and page sizes are refused with exit 2 and no output.
#include <string>

#include "cli/cli_support.h"
#include "csa/core/file.h"
#include "csa/core/json.h"

using namespace csa;

TEST_CASE("page selection and paged decoding from the command line", "[cli]") {
  test::TempDir dir;
  test::write_text(dir.file("story.txt"), test::story_text());
  const std::string model = test::quote(test::shared_dir() + "/models/stories260K");
  const std::string corpus = test::quote(dir.file("story.txt"));
  const std::string policy = test::quote(dir.file("p.json"));
  auto r = test::run_app("csa-calibrate",
                         model + " " + corpus + " --tokens 600 --ctx 128 -q -o " + policy);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);

  // csa-eval applies the policy and a uniform baseline page by page; the JSON says so.
  r = test::run_app("csa-eval", model + " " + corpus + " --ctx 128 --max-tokens 600 --policy " +
                                    policy + " --baseline uniform:8 --select page:4 -q -o " +
                                    test::quote(dir.file("eval.json")));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const Json ev = read_json_file(dir.file("eval.json"));
  REQUIRE(ev["runs"].size() == 2);
  for (const auto& run : ev["runs"]) {
    CHECK(run["sparsity"]["select"] == "page:4");
    CHECK(run["label"].get<std::string>().find("[page:4]") != std::string::npos);
  }

  // csa-generate decodes over a paged cache of the policy's page size.
  r = test::run_app("csa-generate", model + " --policy " + policy +
                                        " --select page:4 -n 12 --prompt 'Once upon a' --json -q");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const Json gen = Json::parse(r.output);
  CHECK(gen["policy"]["kv_cache"] == "paged:4");
  CHECK(gen["policy"]["select"] == "page:4");
  CHECK(gen["policy"]["tokens_identical_to_dense"].get<int64_t>() >= 0);

  // The decode benchmark runs on the CPU (the reference path) with every variant.
  r = test::run_app("csa-bench",
                    "--decode --heads 4 --kv-heads 2 --head-dim 16 --ctx 256 "
                    "--repeats 1 --fraction 0.1 -q");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const Json bench = Json::parse(r.output);
  CHECK(bench["runs"].size() >= 3);

  // Refused: a bad selection, a page size the cache cannot take, a bad "select" in a policy.
  r = test::run_app("csa-eval", model + " " + corpus + " --policy " + policy +
                                    " --select page:0 -o " + test::quote(dir.file("no.json")));
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("--select 'page:0'") != std::string::npos);
  r = test::run_app("csa-generate", model + " --policy " + policy + " --select page:3 -n 4 -q");
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("page size 3") != std::string::npos);
  r = test::run_app("csa-bench",
                    "--decode --heads 2 --kv-heads 1 --head-dim 8 --ctx 64 --page 24 -q");
  CHECK(r.exit_code == 2);
  Json bad = read_json_file(dir.file("p.json"));
  bad["select"] = "pages:9";
  test::write_text(dir.file("bad.json"), bad.dump());
  r = test::run_app("csa-eval", model + " " + corpus + " --policy " +
                                    test::quote(dir.file("bad.json")) + " -o " +
                                    test::quote(dir.file("no.json")));
  CHECK(r.exit_code != 0);
  CHECK(r.output.find("select") != std::string::npos);
  CHECK_FALSE(file_exists(dir.file("no.json")));
}
