// Process-level runtime: versions, thread count, device selection, run metadata for JSON outputs.
#pragma once

#include <ATen/ATen.h>

#include <chrono>
#include <string>
#include <vector>

#include "csa/core/json.h"

namespace csa {

std::string csa_version();     // e.g. "0.1.0"
std::string csa_git_commit();  // short hash of the built tree (+ "-dirty"), or "unknown"
std::string torch_version();   // libtorch the binary was built against

// Sets the intra-op thread count; n <= 0 means "all cores". Returns the count in effect.
int set_threads(int n);

// Parses "cpu", "cuda" or "cuda:N"; an unavailable device is an InputError.
at::Device parse_device(const std::string& spec);
// Parses "float32" / "fp32", "bfloat16" / "bf16", "float16" / "fp16".
at::ScalarType parse_dtype(const std::string& spec);
std::string dtype_name(at::ScalarType t);
std::string device_description(const at::Device& d);
// The CPU's model name (/proc/cpuinfo) and the load averages (/proc/loadavg, "1m 5m 15m"), for
// timings taken on a shared machine; "unknown" where not readable.
std::string cpu_model_name();
std::string load_average();
// CPU seconds used by this process so far, all threads (CLOCK_PROCESS_CPUTIME_ID).
double process_cpu_seconds();
// Seconds since this process started (/proc/self/stat against /proc/uptime, 10 ms steps), or -1
// where not readable: what start-up (the dynamic loader, libtorch's static initialisers) took
// before main when called first thing.
double process_age_seconds();

// Shell-quoted command line, as recorded in every JSON output.
std::string command_line(const std::vector<std::string>& argv);

// The `run` block every policy / results JSON carries: tool, version, git commit, the exact
// command, library versions, device, threads, start time and wall time.
struct RunClock {
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  std::string started_utc;
  RunClock();
  double seconds() const;
};

Json run_metadata(const std::string& tool, const std::string& command, const at::Device& device,
                  const RunClock& clock);

}  // namespace csa
