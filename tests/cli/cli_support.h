// Running the apps as a user would: exit code and stderr/stdout captured.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <string>

#include "support.h"

namespace csa::test {

struct RunResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr interleaved
};

inline std::string app_path(const std::string& app) { return binary_dir() + "/apps/" + app; }

// Runs `app args...` through the shell (args must be shell-quoted by the caller).
inline RunResult run_app(const std::string& app, const std::string& args) {
  RunResult r;
  std::string cmd = app_path(app) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

inline std::string quote(const std::string& s) { return "'" + s + "'"; }

}  // namespace csa::test
