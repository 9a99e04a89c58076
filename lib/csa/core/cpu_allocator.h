// A CPU allocator for libtorch that keeps large freed blocks for reuse. A forward pass allocates
// the same large activations (tens of MiB: MLP hidden states, per-window logits) for every layer
// and window; from glibc each is a fresh mmap whose pages fault in on first touch and are unmapped
// on free (about 10% of a CPU eval's time went to that, most of it system time). Blocks of at
// least 1 MiB go back to a per-size free list instead, up to a cap on the bytes held there.
#pragma once

#include <cstddef>
#include <cstdint>

namespace csa {

// Installs the allocator as libtorch's CPU allocator (once per process; later calls only change
// the cap). `max_cached_bytes` bounds the free blocks kept (they count in the process's RSS).
void install_reusing_cpu_allocator(size_t max_cached_bytes = size_t(512) << 20);

// Bytes in free blocks held for reuse now (tests, benchmarks).
size_t reusing_cpu_allocator_cached_bytes();

}  // namespace csa
