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

// Single-quoted for the shell (a ' inside becomes '\'').
inline std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs `script` with bash (pipes, process substitution, PIPESTATUS), `set -o pipefail`.
inline RunResult run_bash(const std::string& script) {
  RunResult r;
  const std::string cmd = "bash -o pipefail -c " + quote(script) + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

// About 700 stories260K tokens of the kind of text it was trained on.
inline std::string story_text() {
  const char* lines[] = {
      "Once upon a time, there was a little girl named Lily. She loved to play outside.",
      "One day, she saw a big red ball in the park. She ran to get it and laughed.",
      "Her mom said, \"Lily, be careful!\" Lily smiled and said, \"I will, Mom.\"",
      "Then a small dog came and wanted to play too. They played all day long.",
      "At the end of the day, Lily was tired and happy. She went home and slept.",
  };
  std::string s;
  for (int rep = 0; rep < 8; ++rep)
    for (const char* l : lines) s += std::string(l) + "\n";
  return s;
}

}  // namespace csa::test
