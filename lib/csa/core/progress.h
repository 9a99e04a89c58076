// A progress bar with rate and ETA on stderr; off unless enabled (apps enable it when stderr is
// a terminal and -q is not given).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace csa {

void set_progress_enabled(bool enabled);
bool progress_enabled();

class Progress {
 public:
  Progress(std::string label, int64_t total, std::string unit = "tok");
  ~Progress();
  void advance(int64_t n);
  void finish();

 private:
  void draw(bool final);
  std::string label_, unit_;
  int64_t total_, done_ = 0;
  std::chrono::steady_clock::time_point start_, last_draw_;
  bool active_, finished_ = false;
};

}  // namespace csa
