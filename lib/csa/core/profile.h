// Optional phase timers for finding where the time goes (scripts/profile_cpu.sh,
// results/cpu/profile.json). Off by default: a scope then costs one relaxed atomic load and a
// branch. On (profile_enable(), which the apps do for --profile FILE or CSA_PROFILE=FILE), each
// scope adds its wall time to a named phase, from any thread (a phase timed inside a parallel
// region sums its threads' time: thread-seconds, flagged in the JSON).
//
//   void f() {
//     CSA_PROFILE_SCOPE("attention/qk");   // named once per site; nested names use '/'
//     ...
//   }
//   { ProfileSection pass("dense"); ... }  // the phases' totals over one labelled stretch
//
// profile_json() gives every phase's total and every section's own totals (phases, wall and
// process CPU seconds), in the order the sections closed.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "csa/core/json.h"

namespace csa {

namespace profile_detail {
extern std::atomic<bool> g_enabled;
int register_phase(const char* name);  // stable id for a name (registered once per site)
void add(int phase, int64_t nanoseconds);
}  // namespace profile_detail

inline bool profile_enabled() { return profile_detail::g_enabled.load(std::memory_order_relaxed); }
// Turns the timers on or off; the totals are kept (profile_reset() clears them).
void profile_enable(bool on);
void profile_reset();

// Times its scope into `phase` when profiling is on.
class ProfileScope {
 public:
  explicit ProfileScope(int phase) : phase_(profile_enabled() ? phase : -1) {
    if (phase_ >= 0) start_ = std::chrono::steady_clock::now();
  }
  ~ProfileScope() {
    if (phase_ >= 0)
      profile_detail::add(phase_, std::chrono::duration_cast<std::chrono::nanoseconds>(
                                      std::chrono::steady_clock::now() - start_)
                                      .count());
  }
  ProfileScope(const ProfileScope&) = delete;
  ProfileScope& operator=(const ProfileScope&) = delete;

 private:
  int phase_;
  std::chrono::steady_clock::time_point start_;
};

#define CSA_PROFILE_CONCAT2(a, b) a##b
#define CSA_PROFILE_CONCAT(a, b) CSA_PROFILE_CONCAT2(a, b)
#define CSA_PROFILE_SCOPE(name)                                    \
  static const int CSA_PROFILE_CONCAT(csa_profile_id_, __LINE__) = \
      ::csa::profile_detail::register_phase(name);                 \
  ::csa::ProfileScope CSA_PROFILE_CONCAT(csa_profile_scope_,       \
                                         __LINE__)(CSA_PROFILE_CONCAT(csa_profile_id_, __LINE__))

// Records the phases' totals between its construction and destruction as one section named
// `label`, with its wall and process CPU seconds. Nothing when profiling is off.
class ProfileSection {
 public:
  explicit ProfileSection(std::string label);
  ~ProfileSection();
  ProfileSection(const ProfileSection&) = delete;
  ProfileSection& operator=(const ProfileSection&) = delete;

 private:
  std::string label_;
  bool active_;
  std::vector<int64_t> ns_, calls_;
  double wall0_ = 0, cpu0_ = 0;
};

// {"phases": {name: {"seconds", "calls", "thread_seconds"?}}, "sections": [{"label",
//  "wall_seconds", "cpu_seconds", "phases": {...}}]}
Json profile_json();

}  // namespace csa
