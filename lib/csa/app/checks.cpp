#include "csa/app/checks.h"

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace csa::app {
namespace {

// %g without a trailing ".0": 1, 0.5, 1e-06.
std::string show(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

bool parse_integer(const std::string& s, int64_t& out) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno == ERANGE || end == s.c_str() || *end != '\0') return false;
  out = static_cast<int64_t>(v);
  return true;
}

bool parse_number(const std::string& s, double& out) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s.c_str(), &end);
  if (errno == ERANGE || end == s.c_str() || *end != '\0' || !std::isfinite(v)) return false;
  out = v;
  return true;
}

std::string out_of_range(const std::string& value, const std::string& expected) {
  return value + " is out of range: expected " + expected;
}

}  // namespace

CLI::Validator integer_in(int64_t min, int64_t max) {
  const std::string expected =
      max == INT64_MAX ? "an integer >= " + std::to_string(min)
                       : "an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
  const std::string desc = max == INT64_MAX
                               ? ">=" + std::to_string(min)
                               : "[" + std::to_string(min) + "," + std::to_string(max) + "]";
  return CLI::Validator(
      [=](std::string& value) -> std::string {
        int64_t v = 0;
        if (!parse_integer(value, v))
          return "'" + value + "' is not an integer (or does not fit in 64 bits)";
        return v < min || v > max ? out_of_range(value, expected) : std::string();
      },
      desc);
}

CLI::Validator integer_at_least(int64_t min) { return integer_in(min, INT64_MAX); }

CLI::Validator number_at_least(double min) {
  const std::string expected = "a number >= " + show(min);
  return CLI::Validator(
      [=](std::string& value) -> std::string {
        double v = 0;
        if (!parse_number(value, v)) return "'" + value + "' is not a finite number";
        return v < min ? out_of_range(value, expected) : std::string();
      },
      ">=" + show(min));
}

CLI::Validator number_in(double low, double high, bool low_open, bool high_open) {
  const std::string range =
      (low_open ? "(" : "[") + show(low) + ", " + show(high) + (high_open ? ")" : "]");
  return CLI::Validator(
      [=](std::string& value) -> std::string {
        double v = 0;
        if (!parse_number(value, v)) return "'" + value + "' is not a finite number";
        const bool below = low_open ? v <= low : v < low;
        const bool above = high_open ? v >= high : v > high;
        return below || above ? out_of_range(value, "a number in " + range) : std::string();
      },
      range);
}

}  // namespace csa::app
