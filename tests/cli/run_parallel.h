// Several app runs at once: every app start loads libtorch (about a second of CPU), so tests that
// check many bad inputs start them together and collect the results in order.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "cli/cli_support.h"

namespace csa::test {

// (app, shell-quoted args) pairs; at most `width` run at a time.
inline std::vector<RunResult> run_apps_parallel(
    const std::vector<std::pair<std::string, std::string>>& commands, size_t width = 4) {
  std::vector<RunResult> out(commands.size());
  for (size_t first = 0; first < commands.size(); first += width) {
    const size_t last = std::min(commands.size(), first + width);
    std::vector<FILE*> pipes;
    for (size_t i = first; i < last; ++i) {
      const std::string cmd = app_path(commands[i].first) + " " + commands[i].second + " 2>&1";
      pipes.push_back(popen(cmd.c_str(), "r"));
      REQUIRE(pipes.back() != nullptr);
    }
    for (size_t i = first; i < last; ++i) {
      FILE* p = pipes[i - first];
      char buf[4096];
      size_t n;
      while ((n = fread(buf, 1, sizeof buf, p)) > 0) out[i].output.append(buf, n);
      const int status = pclose(p);
      out[i].exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
  }
  return out;
}

}  // namespace csa::test
