// Progress of long passes on stderr: a redrawn bar on a terminal, plain periodic lines or JSON
// lines elsewhere (CI logs), or nothing. Apps choose the mode (--progress, -q); the library only
// reports work done.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace csa {

enum class ProgressMode {
  kNone,   // silent
  kBar,    // one line redrawn with '\r' (a terminal)
  kLines,  // "calibrate: 40% (4096/10000 tokens, 12.3 s, ETA 18 s)" at each 10% or every 10 s
  kJson,   // {"task", "done", "total", "unit", "seconds", "eta_seconds"} per line, same cadence
};

// "auto" (bar on a terminal, lines otherwise), "bar", "lines", "json", "none"; UsageError else.
ProgressMode parse_progress_mode(const std::string& spec, bool stderr_is_terminal);
void set_progress_mode(ProgressMode mode);
ProgressMode progress_mode();

class Progress {
 public:
  // Lines and JSON lines: one at each 10% of `total` and one at least every 10 s, never more
  // than one a second, and always a final one (with the rate) from finish().
  static constexpr double kLineEverySeconds = 10.0;
  static constexpr double kMinLineGapSeconds = 1.0;

  Progress(std::string label, int64_t total, std::string unit = "tokens");
  ~Progress();
  void advance(int64_t n);
  void finish();

 private:
  void report(bool final);
  void draw_bar(bool final, double seconds);
  void print_line(bool final, double seconds);
  void print_json(bool final, double seconds);
  double eta(double seconds) const;
  std::string label_, unit_;
  int64_t total_, done_ = 0;
  std::chrono::steady_clock::time_point start_, last_report_;
  int last_decile_ = 0;
  ProgressMode mode_;
  bool finished_ = false;
};

}  // namespace csa
