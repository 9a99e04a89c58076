#include "csa/core/progress.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "csa/core/error.h"
#include "csa/core/json.h"

namespace csa {
namespace {
ProgressMode g_mode = ProgressMode::kNone;

double since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Seconds as people read them in a log: 0.4 s, 12.3 s, 95 s.
std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, s < 60 ? "%.1f s" : "%.0f s", s);
  return buf;
}
}  // namespace

ProgressMode parse_progress_mode(const std::string& spec, bool stderr_is_terminal) {
  if (spec == "auto") return stderr_is_terminal ? ProgressMode::kBar : ProgressMode::kLines;
  if (spec == "bar") return ProgressMode::kBar;
  if (spec == "lines") return ProgressMode::kLines;
  if (spec == "json") return ProgressMode::kJson;
  if (spec == "none") return ProgressMode::kNone;
  throw UsageError("--progress: '" + spec + "' is not one of auto, bar, lines, json, none");
}

void set_progress_mode(ProgressMode mode) { g_mode = mode; }
ProgressMode progress_mode() { return g_mode; }

Progress::Progress(std::string label, int64_t total, std::string unit)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      start_(std::chrono::steady_clock::now()),
      last_report_(start_),
      mode_(g_mode) {}

Progress::~Progress() { finish(); }

void Progress::advance(int64_t n) {
  done_ += n;
  if (mode_ == ProgressMode::kNone) return;
  const double gap = since(last_report_);
  if (mode_ == ProgressMode::kBar) {
    if (gap > 0.2) report(false);
    return;
  }
  const int decile = total_ > 0 ? static_cast<int>(std::min<int64_t>(10, done_ * 10 / total_)) : 0;
  if (gap >= kLineEverySeconds || (decile > last_decile_ && gap >= kMinLineGapSeconds)) {
    last_decile_ = decile;
    report(false);
  }
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  if (mode_ != ProgressMode::kNone) report(true);
}

void Progress::report(bool final) {
  last_report_ = std::chrono::steady_clock::now();
  const double seconds = since(start_);
  switch (mode_) {
    case ProgressMode::kBar:
      draw_bar(final, seconds);
      break;
    case ProgressMode::kLines:
      print_line(final, seconds);
      break;
    case ProgressMode::kJson:
      print_json(final, seconds);
      break;
    case ProgressMode::kNone:
      break;
  }
}

double Progress::eta(double seconds) const {
  const double rate = seconds > 0 ? static_cast<double>(done_) / seconds : 0;
  return rate > 0 ? static_cast<double>(std::max<int64_t>(0, total_ - done_)) / rate : 0;
}

void Progress::draw_bar(bool final, double secs) {
  double frac = total_ > 0 ? static_cast<double>(done_) / static_cast<double>(total_) : 1.0;
  if (frac > 1) frac = 1;
  const int width = 28;
  int filled = static_cast<int>(frac * width);
  std::string bar(static_cast<size_t>(filled), '#');
  bar.resize(width, '.');
  double rate = secs > 0 ? static_cast<double>(done_) / secs : 0;
  std::fprintf(stderr, "\r%s [%s] %3.0f%% %.0f %s/s ETA %.0fs   %s", label_.c_str(), bar.c_str(),
               frac * 100, rate, unit_.c_str(), final ? 0.0 : eta(secs), final ? "\n" : "");
  std::fflush(stderr);
}

void Progress::print_line(bool final, double secs) {
  const double pct =
      total_ > 0 ? 100.0 * static_cast<double>(done_) / static_cast<double>(total_) : 100.0;
  std::string tail;
  if (final) {
    char rate[48];
    std::snprintf(rate, sizeof rate, "%.0f %s/s", secs > 0 ? static_cast<double>(done_) / secs : 0,
                  unit_.c_str());
    tail = rate;
  } else {
    tail = "ETA " + seconds_text(eta(secs));
  }
  std::fprintf(stderr, "%s: %.0f%% (%lld/%lld %s, %s, %s)\n", label_.c_str(), std::floor(pct),
               static_cast<long long>(done_), static_cast<long long>(total_), unit_.c_str(),
               seconds_text(secs).c_str(), tail.c_str());
  std::fflush(stderr);
}

void Progress::print_json(bool final, double secs) {
  Json j = {{"task", label_},
            {"done", done_},
            {"total", total_},
            {"unit", unit_},
            {"seconds", std::round(secs * 1000) / 1000},
            {"eta_seconds", final ? 0.0 : std::round(eta(secs) * 10) / 10},
            {"final", final}};
  const std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
}

}  // namespace csa
