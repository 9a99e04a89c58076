#include "csa/core/profile.h"

#include <array>
#include <ctime>
#include <mutex>
#include <thread>

#include "csa/core/error.h"

namespace csa {
namespace profile_detail {

std::atomic<bool> g_enabled{false};

namespace {

constexpr int kMaxPhases = 128;

struct Slot {
  std::string name;
  std::atomic<int64_t> ns{0}, calls{0};
  std::atomic<bool> off_main{false};  // recorded on a thread other than the enabling one
};

struct Registry {
  std::mutex mutex;  // guards registration and the section list
  std::array<Slot, kMaxPhases> slots;
  std::atomic<int> n{0};
  std::thread::id main_thread;
  Json sections = Json::array();
};

Registry& registry() {
  static Registry r;
  return r;
}

double clock_seconds(clockid_t id) {
  timespec t{};
  clock_gettime(id, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

}  // namespace

int register_phase(const char* name) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  const int n = r.n.load();
  for (int i = 0; i < n; ++i)
    if (r.slots[static_cast<size_t>(i)].name == name) return i;
  CSA_CHECK(n < kMaxPhases, "too many profile phases");
  r.slots[static_cast<size_t>(n)].name = name;
  r.n.store(n + 1);
  return n;
}

void add(int phase, int64_t nanoseconds) {
  Slot& s = registry().slots[static_cast<size_t>(phase)];
  s.ns.fetch_add(nanoseconds, std::memory_order_relaxed);
  s.calls.fetch_add(1, std::memory_order_relaxed);
  if (std::this_thread::get_id() != registry().main_thread)
    s.off_main.store(true, std::memory_order_relaxed);
}

}  // namespace profile_detail

using profile_detail::registry;

void profile_enable(bool on) {
  if (on) registry().main_thread = std::this_thread::get_id();
  profile_detail::g_enabled.store(on);
}

void profile_reset() {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  for (auto& s : r.slots) {
    s.ns = 0;
    s.calls = 0;
    s.off_main = false;
  }
  r.sections = Json::array();
}

namespace {

Json phases_json(const std::vector<int64_t>& ns, const std::vector<int64_t>& calls) {
  auto& r = registry();
  Json j = Json::object();
  for (size_t i = 0; i < ns.size(); ++i) {
    if (calls[i] == 0) continue;
    Json p = {{"seconds", 1e-9 * static_cast<double>(ns[i])}, {"calls", calls[i]}};
    if (r.slots[i].off_main.load()) p["thread_seconds"] = true;
    j[r.slots[i].name] = p;
  }
  return j;
}

void totals(std::vector<int64_t>& ns, std::vector<int64_t>& calls) {
  auto& r = registry();
  const auto n = static_cast<size_t>(r.n.load());
  ns.resize(n);
  calls.resize(n);
  for (size_t i = 0; i < n; ++i) {
    ns[i] = r.slots[i].ns.load();
    calls[i] = r.slots[i].calls.load();
  }
}

}  // namespace

ProfileSection::ProfileSection(std::string label)
    : label_(std::move(label)), active_(profile_enabled()) {
  if (!active_) return;
  totals(ns_, calls_);
  wall0_ = profile_detail::clock_seconds(CLOCK_MONOTONIC);
  cpu0_ = profile_detail::clock_seconds(CLOCK_PROCESS_CPUTIME_ID);
}

ProfileSection::~ProfileSection() {
  if (!active_) return;
  const double wall = profile_detail::clock_seconds(CLOCK_MONOTONIC) - wall0_;
  const double cpu = profile_detail::clock_seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu0_;
  std::vector<int64_t> ns, calls;
  totals(ns, calls);
  for (size_t i = 0; i < ns.size(); ++i) {
    ns[i] -= i < ns_.size() ? ns_[i] : 0;
    calls[i] -= i < calls_.size() ? calls_[i] : 0;
  }
  Json s = {{"label", label_},
            {"wall_seconds", wall},
            {"cpu_seconds", cpu},
            {"phases", phases_json(ns, calls)}};
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.sections.push_back(std::move(s));
}

Json profile_json() {
  std::vector<int64_t> ns, calls;
  totals(ns, calls);
  Json j = {{"phases", phases_json(ns, calls)}};
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  j["sections"] = r.sections;
  return j;
}

}  // namespace csa
