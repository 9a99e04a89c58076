// Progress without a terminal (CI logs): plain lines by default, JSON lines with --progress json,
// nothing with -q or --progress none, and never a carriage return. Model: stories260K.
#include <sstream>
#include <string>
#include <vector>

#include "cli/cli_support.h"
#include "cli/run_parallel.h"
#include "csa/core/json.h"

using namespace csa;

namespace {
std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}
}  // namespace

TEST_CASE("progress on a pipe: lines, JSON lines or nothing, never a carriage return", "[cli]") {
  test::TempDir dir;
  test::write_text(dir.file("story.txt"), test::story_text());
  const std::string args = test::quote(test::shared_dir() + "/models/stories260K") + " " +
                           test::quote(dir.file("story.txt")) +
                           " --max-tokens 200 --ctx 64 --threads 1 -o " +
                           test::quote(dir.file("out.json"));
  // stdout goes to the file; what the runs print is stderr: logs and progress.
  const auto runs = test::run_apps_parallel({{"csa-eval", args},
                                             {"csa-eval", args + " --progress json"},
                                             {"csa-eval", args + " --progress lines -q"},
                                             {"csa-eval", args + " --progress none"},
                                             {"csa-eval", args + " --progress sometimes"}});
  for (const auto& r : runs) {
    INFO(r.output);
    CHECK(r.output.find('\r') == std::string::npos);
  }
  {  // auto without a terminal = lines; the last one says 100% with the rate
    INFO(runs[0].output);
    REQUIRE(runs[0].exit_code == 0);
    CHECK(runs[0].output.find("dense: 100% (") != std::string::npos);
    CHECK(runs[0].output.find(" tokens, ") != std::string::npos);
    CHECK(runs[0].output.find(" tokens/s)") != std::string::npos);
  }
  {  // json: every progress line parses, the final one has done == total
    INFO(runs[1].output);
    REQUIRE(runs[1].exit_code == 0);
    int n = 0;
    for (const std::string& line : lines_of(runs[1].output)) {
      if (line.empty() || line[0] != '{') continue;
      const Json j = parse_json(line, "progress line");
      CHECK(j.at("task") == "dense");
      for (const char* key : {"done", "total", "seconds", "eta_seconds"})
        CHECK(j.at(key).is_number());
      if (j.at("final") == true) CHECK(j.at("done") == j.at("total"));
      ++n;
    }
    CHECK(n >= 1);
  }
  CHECK(runs[2].exit_code == 0);
  CHECK(runs[2].output.empty());  // -q silences progress (and info logs) whatever --progress says
  CHECK(runs[3].exit_code == 0);
  CHECK(runs[3].output.find("dense: ") == std::string::npos);
  CHECK(runs[4].exit_code == 2);
  CHECK(runs[4].output.find("--progress") != std::string::npos);
}
