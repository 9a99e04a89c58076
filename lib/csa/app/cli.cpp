#include "csa/app/cli.h"

#include <ATen/Parallel.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "csa/app/checks.h"
#include "csa/core/cpu_allocator.h"
#include "csa/core/error.h"
#include "csa/core/json.h"
#include "csa/core/profile.h"
#include "csa/core/progress.h"
#include "csa/core/runtime.h"
#include "csa/core/sanitizer.h"

namespace csa::app {
namespace {
std::string g_command;

// The phase timers' totals with what is needed to read them: command, machine, threads, load.
// process: seconds before main (start-up) and from main to the profile's writing (run_main).
void write_profile(const std::string& path, const std::string& load_start, const Json& process) {
  Json j = {{"kind", "csa-profile"},
            {"command", g_command},
            {"version", csa_version()},
            {"git_commit", csa_git_commit()},
            {"libtorch", torch_version()},
            {"cpu", cpu_model_name()},
            {"device", device_description(at::kCPU)},
            {"threads", at::get_num_threads()},
            {"load_average_start", load_start},
            {"load_average_end", load_average()},
            {"note",
             "seconds are wall time summed over calls; phases marked thread_seconds run inside "
             "parallel regions and sum their threads' time"}};
  Json p = profile_json();
  j["process"] = process;
  j["phases"] = p["phases"];
  j["sections"] = p["sections"];
  write_json_file(path, j);
}

// A finished run ends the process here, without its teardown: every output is written and closed
// by then, and what exit() would do next -- destroying libtorch's and CUDA's globals (the caching
// allocator, cuBLAS handles, the device context) and unloading the libraries -- took ~0.15 s of a
// GPU calibration's wall time (results/gpu/calibrate_exit: wall - start-up - main 0.33 -> 0.19 s)
// and ~0.11 s of a CPU csa-tokenize's. Kept where something must run at exit: sanitizer builds
// (their leak checks) and CSA_FULL_EXIT=1 (tools that collect at exit, e.g. profilers).
[[nodiscard]] int finish(int rc) {
  if (CSA_ASAN) return rc;
  if (const char* full = std::getenv("CSA_FULL_EXIT"); full != nullptr && std::string(full) == "1")
    return rc;
  std::cout.flush();
  std::cerr.flush();
  spdlog::shutdown();  // flushes the loggers
  std::fflush(nullptr);
  std::_Exit(rc);
}
}  // namespace

void add_common_options(CLI::App& app, CommonOptions& options) {
  app.add_option("--threads", options.threads, "CPU threads (default 0: all cores)")
      ->check(integer_at_least(0));
  app.add_flag("-q,--quiet", options.quiet, "Only print errors; no progress");
  app.add_option("--progress", options.progress,
                 "Progress on stderr: auto (a bar on a terminal, else plain lines), bar, lines, "
                 "json (one object per line), none")
      ->check(CLI::IsMember({"auto", "bar", "lines", "json", "none"}));
  app.add_flag("-v,--verbose", options.verbose, "Debug logging");
  app.add_option("--profile", options.profile,
                 "Write per-phase wall times to this JSON file (also CSA_PROFILE=FILE)");
  app.set_version_flag("--version", std::string("csa ") + csa_version() + " (" + csa_git_commit() +
                                        ", libtorch " + torch_version() + ")");
  app.get_formatter()->column_width(34);
}

const std::string& recorded_command() { return g_command; }

namespace {
// An option that takes one value but was given several times: "--tolerance: given 2 times (0.1,
// 0): give it once" rather than CLI11's "At Most 1 required but received 2"; "" if none.
std::string repeated_option(const CLI::App& app) {
  for (const CLI::Option* opt : app.get_options()) {
    if (opt->get_items_expected_max() != 1 || opt->count() < 2) continue;
    std::string values;
    for (const auto& v : opt->results()) values += (values.empty() ? "" : ", ") + v;
    return opt->get_name() + ": given " + std::to_string(opt->count()) + " times (" + values +
           "): give it once";
  }
  return "";
}

// "corpus and --policy are both" when more than one of `paths` is "-"; "" otherwise.
std::string dash_names(const NamedPaths& paths) {
  std::vector<std::string> names;
  for (const auto& [name, value] : paths)
    if (value == "-") names.push_back(name);
  if (names.size() < 2) return "";
  std::string out;
  for (size_t i = 0; i < names.size(); ++i)
    out += (i == 0 ? "" : (i + 1 == names.size() ? " and " : ", ")) + names[i];
  return out + (names.size() == 2 ? " are both '-'" : " are all '-'");
}
}  // namespace

void check_std_streams(const NamedPaths& inputs, const NamedPaths& outputs) {
  if (const std::string names = dash_names(inputs); !names.empty())
    throw UsageError("only one input may be '-' (standard input), but " + names +
                     ": give the others as files or process substitutions <(...)");
  if (const std::string names = dash_names(outputs); !names.empty())
    throw UsageError("only one output may be '-' (standard output), but " + names +
                     ": write the others to files");
  for (const auto& [name, value] : inputs)
    if (value == "-" && isatty(STDIN_FILENO))
      spdlog::info("reading {} from standard input, a terminal: end it with Ctrl-D", name);
}

int run_main(CLI::App& app, CommonOptions& common, int argc, char** argv,
             const std::function<int()>& body) {
  const double start_up = process_age_seconds();
  const RunClock main_clock;
  std::vector<std::string> args(argv, argv + argc);
  if (!args.empty()) {
    auto slash = args[0].find_last_of('/');
    if (slash != std::string::npos) args[0] = args[0].substr(slash + 1);
  }
  g_command = command_line(args);
  auto logger = spdlog::stderr_color_mt("csa");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("[%H:%M:%S] %^%l%$ %v");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help / --version print and succeed; every other parse error is a usage error (exit 2),
    // not CLI11's own codes (105, 106, ...), so scripts can rely on docs/cli.md.
    if (dynamic_cast<const CLI::ArgumentMismatch*>(&e) != nullptr) {
      if (const std::string repeated = repeated_option(app); !repeated.empty()) {
        std::cerr << repeated << "\nRun with --help for more information.\n";
        return static_cast<int>(ErrorKind::kUsage);
      }
    }
    const int rc = app.exit(e);
    return rc == 0 ? 0 : static_cast<int>(ErrorKind::kUsage);
  }
  spdlog::set_level(common.quiet ? spdlog::level::err
                                 : (common.verbose ? spdlog::level::debug : spdlog::level::info));
  set_progress_mode(common.quiet ? ProgressMode::kNone
                                 : parse_progress_mode(common.progress, isatty(STDERR_FILENO)));
  try {
    set_threads(common.threads);
    install_reusing_cpu_allocator();  // core/cpu_allocator.h: large activations without faults
    if (common.profile.empty()) {
      const char* env = std::getenv("CSA_PROFILE");
      if (env != nullptr) common.profile = env;
    }
    if (common.profile.empty()) return finish(body());
    const std::string load_start = load_average();
    profile_enable(true);
    const int rc = body();
    profile_enable(false);
    write_profile(common.profile, load_start,
                  {{"start_up_seconds", start_up}, {"main_seconds", main_clock.seconds()}});
    return finish(rc);
  } catch (const Error& e) {
    spdlog::error("{}", e.what());
    return e.exit_code();
  } catch (const c10::Error& e) {
    spdlog::error("libtorch: {}", e.what_without_backtrace());
    return static_cast<int>(ErrorKind::kInternal);
  } catch (const std::bad_alloc&) {
    spdlog::error("out of memory");
    return static_cast<int>(ErrorKind::kInternal);
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return static_cast<int>(ErrorKind::kInternal);
  }
}

}  // namespace csa::app
