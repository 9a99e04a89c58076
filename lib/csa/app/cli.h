// Plumbing shared by the apps: common flags, logging to stderr, and the one place where library
// errors become log lines and exit codes (STYLE.md §8: only apps catch).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace csa::app {

struct CommonOptions {
  int threads = 0;                // 0 = all cores
  bool quiet = false;             // -q: errors only, no progress
  bool verbose = false;           // -v: debug logging
  std::string progress = "auto";  // auto (bar on a terminal, else lines), bar, lines, json, none
  std::string profile;  // --profile FILE (or CSA_PROFILE=FILE): phase timers (core/profile.h)
};

void add_common_options(CLI::App& app, CommonOptions& options);

// Parses argv, configures logging and threads, runs `body`, and maps errors to exit codes:
// csa::Error -> its kind's code (docs/cli.md), CLI11 errors -> 2, anything else -> 1.
// `argv_out` receives the arguments (for the `command` recorded in JSON outputs).
int run_main(CLI::App& app, CommonOptions& common, int argc, char** argv,
             const std::function<int()>& body);

// Standard input and output are one stream each: throws UsageError naming the arguments when
// more than one of `inputs` is "-" (stdin), or more than one of `outputs` is "-" (stdout). Pairs
// are (argument name as the user types it, value). Call before any work, so a bad command fails
// fast.
using NamedPaths = std::vector<std::pair<std::string, std::string>>;
void check_std_streams(const NamedPaths& inputs, const NamedPaths& outputs = {});

// The exact command line, shell-quoted, as recorded in JSON outputs.
const std::string& recorded_command();

}  // namespace csa::app
