// Numeric options that make no sense are refused before any work: exit 2 and a message naming the
// option and the value. Negative numbers reach the range check wherever they stand.
#include <string>
#include <utility>
#include <vector>

#include "cli/cli_support.h"
#include "cli/run_parallel.h"
#include "csa/core/file.h"

using namespace csa;

TEST_CASE("numeric options out of range: exit 2 naming the option and the value", "[cli]") {
  test::TempDir dir;
  test::write_text(dir.file("story.txt"), test::story_text());
  const std::string model = test::quote(test::shared_dir() + "/models/stories260K");
  const std::string corpus = test::quote(dir.file("story.txt"));
  const std::string out = " -o " + test::quote(dir.file("out.json"));
  const std::string mc = " " + model + " " + corpus;
  struct Case {
    std::string app, args, needle;
  };
  const std::vector<Case> cases = {
      {"csa-eval", mc + " --max-tokens -3",
       "--max-tokens: -3 is out of range: expected an integer >= 2"},
      {"csa-eval", " --max-tokens -3" + mc,
       "--max-tokens: -3 is out of range"},  // before positionals
      {"csa-eval", mc + " --tolerance -1",
       "--tolerance: -1 is out of range: expected a number >= 0"},
      {"csa-eval", mc + " --tolerance 0.1 --tolerance 0",
       "--tolerance: given 2 times (0.1, 0): give it once"},
      {"csa-eval", mc + " --tolerance nan", "--tolerance: 'nan' is not a finite number"},
      {"csa-eval", mc + " --ctx 1", "--ctx: 1 is out of range: expected an integer >= 2"},
      {"csa-eval", mc + " --threads -2", "--threads: -2 is out of range: expected an integer >= 0"},
      {"csa-eval", mc + " --confidence 1",
       "--confidence: 1 is out of range: expected a number in [0, 1)"},
      {"csa-eval", mc + " --confidence 0.3",
       "--confidence 0.3: expected 0 (point estimates) or a one-sided confidence level in [0.5, "
       "1)"},
      {"csa-calibrate", mc + " --tau 1.5",
       "--tau: 1.5 is out of range: expected a number in (0, 1]"},
      {"csa-calibrate", mc + " --tokens 12abc", "--tokens: '12abc' is not an integer"},
      {"csa-sweep", " " + model + " p.json " + corpus + " --offset -2",
       "--offset: -2 is out of range: expected an integer >= 0"},
      {"csa-sweep", " " + model + " p.json " + corpus + " --resolution 2",
       "--resolution: 2 is out of range: expected a number in (0, 1]"},
      {"csa-sweep", " " + model + " p.json " + corpus + " --confidence -0.5",
       "--confidence: -0.5 is out of range: expected a number in [0, 1)"},
      {"csa-sweep", " " + model + " p.json " + corpus + " --refine-passes -1",
       "--refine-passes: -1 is out of range: expected an integer >= 0"},
      {"csa-generate", " " + model + " --top-p 0",
       "--top-p: 0 is out of range: expected a number in (0, 1]"},
      {"csa-bench", " --budget 8,-3", "--budget: -3 is out of range: expected an integer >= 1"},
  };
  std::vector<std::pair<std::string, std::string>> commands;
  for (const Case& c : cases)
    commands.emplace_back(c.app,
                          c.args + (c.app == "csa-bench" || c.app == "csa-generate" ? "" : out));
  const auto runs = test::run_apps_parallel(commands);
  for (size_t i = 0; i < cases.size(); ++i) {
    INFO(cases[i].app << cases[i].args << "\n" << runs[i].output);
    CHECK(runs[i].exit_code == 2);
    CHECK(runs[i].output.find(cases[i].needle) != std::string::npos);
  }
  CHECK_FALSE(file_exists(dir.file("out.json")));
}
