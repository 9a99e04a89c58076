#include "csa/core/runtime.h"

#include <ATen/Parallel.h>
#include <torch/version.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <fstream>
#include <sstream>
#include <thread>

#include "csa/core/error.h"

namespace csa {

std::string torch_version() { return TORCH_VERSION; }

int set_threads(int n) {
  if (n <= 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(n);
  return at::get_num_threads();
}

at::Device parse_device(const std::string& spec) {
  at::Device device(at::kCPU);
  try {
    device = at::Device(spec);
  } catch (const std::exception&) {
    throw UsageError("--device: '" + spec + "' is not a device (use cpu, cuda or cuda:N)");
  }
  if (device.is_cuda()) {
    if (!at::hasCUDA())
      throw InputError("--device " + spec +
                       ": this build of csa has no CUDA support or no GPU is visible");
  } else if (!device.is_cpu()) {
    throw UsageError("--device: '" + spec + "' is not supported (use cpu or cuda)");
  }
  return device;
}

at::ScalarType parse_dtype(const std::string& spec) {
  if (spec == "float32" || spec == "fp32" || spec == "float") return at::kFloat;
  if (spec == "bfloat16" || spec == "bf16") return at::kBFloat16;
  if (spec == "float16" || spec == "fp16" || spec == "half") return at::kHalf;
  throw UsageError("--dtype: '" + spec + "' is not one of float32, bfloat16, float16");
}

std::string dtype_name(at::ScalarType t) {
  switch (t) {
    case at::kFloat:
      return "float32";
    case at::kBFloat16:
      return "bfloat16";
    case at::kHalf:
      return "float16";
    case at::kDouble:
      return "float64";
    default:
      return c10::toString(t);
  }
}

std::string device_description(const at::Device& d) {
  if (d.is_cpu()) {
    return "cpu (" + std::to_string(std::thread::hardware_concurrency()) + " cores, " +
           std::to_string(at::get_num_threads()) + " threads)";
  }
  return d.str();
}

std::string cpu_model_name() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
    }
  return "unknown";
}

std::string load_average() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  if (!(f >> a >> b >> c)) return "unknown";
  return a + " " + b + " " + c;
}

double process_age_seconds() {
  std::ifstream stat("/proc/self/stat"), up("/proc/uptime");
  std::string line;
  double uptime = 0;
  if (!std::getline(stat, line) || !(up >> uptime)) return -1;
  // field 22 (starttime, clock ticks after boot), counted after the ')' that ends field 2
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(line.substr(close + 1));
  std::string field;
  for (int i = 3; i <= 22; ++i)
    if (!(rest >> field)) return -1;
  const long ticks = sysconf(_SC_CLK_TCK);
  if (ticks <= 0) return -1;
  return uptime - std::strtod(field.c_str(), nullptr) / static_cast<double>(ticks);
}

double process_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

std::string command_line(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out += ' ';
    bool plain = !a.empty() && a.find_first_not_of(
                                   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                   "0123456789-_./=:,+@%") == std::string::npos;
    if (plain) {
      out += a;
    } else {
      out += '\'';
      for (char c : a) {
        if (c == '\'')
          out += "'\\''";
        else
          out += c;
      }
      out += '\'';
    }
  }
  return out;
}

RunClock::RunClock() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  started_utc = buf;
}

double RunClock::seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

Json run_metadata(const std::string& tool, const std::string& command, const at::Device& device,
                  const RunClock& clock) {
  Json j;
  j["tool"] = tool;
  j["version"] = csa_version();
  j["git_commit"] = csa_git_commit();
  j["command"] = command;
  j["libtorch"] = torch_version();
  j["device"] = device_description(device);
  j["threads"] = at::get_num_threads();
  j["started_utc"] = clock.started_utc;
  j["wall_seconds"] = clock.seconds();
  return j;
}

}  // namespace csa
