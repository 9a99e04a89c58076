#include "csa/core/cpu_allocator.h"

#include <c10/core/CPUAllocator.h>
#include <torch/version.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace csa {
namespace {

constexpr size_t kAlignment = 64;               // c10's gAlignment
constexpr size_t kMinCached = size_t(1) << 20;  // smaller blocks go straight back to malloc
constexpr size_t kGranule = size_t(64) << 10;   // large sizes round up to 64 KiB classes

class ReusingAllocator final : public c10::Allocator {
 public:
  // libtorch 2.3 made allocate() non-const and copy_data() a pure virtual (c10/core/Allocator.h).
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
  c10::DataPtr allocate(size_t n) override {
    void* p = acquire(n);
    return {p, p, &release, c10::Device(c10::DeviceType::CPU)};
  }
  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }
#else
  c10::DataPtr allocate(size_t n) const override {
    void* p = acquire(n);
    return {p, p, &release, c10::Device(c10::DeviceType::CPU)};
  }
#endif
  c10::DeleterFnPtr raw_deleter() const override { return &release; }

  void set_cap(size_t cap) {
    std::lock_guard<std::mutex> lock(mutex_);
    cap_ = cap;
    trim(0);
  }
  size_t cached() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return cached_;
  }

 private:
  static void release(void* p);

  static void* aligned(size_t n) {
    void* p = nullptr;
    if (posix_memalign(&p, kAlignment, n == 0 ? 1 : n) != 0) throw std::bad_alloc();
    return p;
  }

  void* acquire(size_t n) const {
    if (n < kMinCached) return aligned(n);
    const size_t size = (n + kGranule - 1) / kGranule * kGranule;
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = free_.find(size);
    if (it != free_.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      cached_ -= size;
      return p;
    }
    trim(size);  // make room under the cap for when this block comes back
    void* p = aligned(size);
    large_[p] = size;
    return p;
  }

  // Frees cached blocks, largest first, until `room` more bytes fit under the cap.
  void trim(size_t room) const {
    for (auto it = free_.rbegin(); it != free_.rend() && cached_ + room > cap_;) {
      auto& blocks = it->second;
      while (!blocks.empty() && cached_ + room > cap_) {
        large_.erase(blocks.back());
        std::free(blocks.back());
        blocks.pop_back();
        cached_ -= it->first;
      }
      ++it;
    }
  }

  void put_back(void* p) const {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = large_.find(p);
      if (it != large_.end()) {
        if (cached_ + it->second <= cap_) {
          free_[it->second].push_back(p);
          cached_ += it->second;
          return;
        }
        large_.erase(it);
      }
    }
    std::free(p);
  }

  mutable std::mutex mutex_;
  mutable std::unordered_map<void*, size_t> large_;    // every live or cached large block
  mutable std::map<size_t, std::vector<void*>> free_;  // cached blocks by size
  mutable size_t cached_ = 0;
  size_t cap_ = 0;
};

ReusingAllocator& instance() {
  static auto* a = new ReusingAllocator();  // never destroyed: tensors may outlive main
  return *a;
}

void ReusingAllocator::release(void* p) {
  if (p != nullptr) instance().put_back(p);
}

}  // namespace

void install_reusing_cpu_allocator(size_t max_cached_bytes) {
  static std::once_flag once;
  instance().set_cap(max_cached_bytes);
  std::call_once(once, [] { c10::SetCPUAllocator(&instance(), /*priority=*/1); });
}

size_t reusing_cpu_allocator_cached_bytes() { return instance().cached(); }

}  // namespace csa
