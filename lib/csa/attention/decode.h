// Decoding over a paged KV cache (issue 14, docs/decoding.md): keys and values of one layer in
// pages of P positions, with a key summary per full page (per channel min and max, Quest's), and
// one decode step's attention that reads only the pages the rule keeps (pages.h's rule).
//
// Storage is page-major and contiguous per (batch row, KV head): [B, Hkv, capacity, D] with
// capacity a multiple of P, plus [B, Hkv, capacity / P, D] minima and maxima in the cache's
// dtype (the min and max of stored keys are stored keys: no rounding). The pages are the unit
// of selection and of the kernel's reads; every batch row has the same length.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <memory>

#include "csa/attention/rule.h"

namespace csa {

class PagedKvCache {
 public:
  // page: a power of two in 1..256 (UsageError otherwise).
  explicit PagedKvCache(int64_t page = 16);
  // Appends [B, Hkv, T, D] keys and values; summarises every page they complete. Grows the
  // storage by doubling (reserve() avoids the copies). One position on CUDA is one kernel.
  void append(const at::Tensor& k, const at::Tensor& v);
  // Appends one position [B, Hkv, 1, D] at the device position `position` (int64 [1] on the
  // cache's device, equal to length()) with one CUDA kernel that reads it there, so that a CUDA
  // graph captured once replays at every position; length() advances by one. Needs the CUDA
  // kernels and room in the storage (UsageError otherwise: reserve() first).
  void append_at(const at::Tensor& k, const at::Tensor& v, const at::Tensor& position);
  // Sets the length without touching the storage: for CUDA graph replays, whose appends run on
  // the device only. 0 <= positions <= capacity().
  void set_length(int64_t positions);
  void reserve(int64_t positions, const at::Tensor& like_k);
  int64_t page() const { return page_; }
  int64_t length() const { return length_; }
  int64_t capacity() const { return k_.defined() ? k_.size(2) : 0; }
  int64_t full_pages() const { return length_ / page_; }
  // Views of the filled part: [B, Hkv, length, D]; summaries [B, Hkv, full_pages, D].
  at::Tensor keys() const;
  at::Tensor values() const;
  at::Tensor kmin() const;
  at::Tensor kmax() const;
  // The whole storage (capacity positions), for kernels.
  const at::Tensor& key_storage() const { return k_; }
  const at::Tensor& value_storage() const { return v_; }
  const at::Tensor& kmin_storage() const { return kmin_; }
  const at::Tensor& kmax_storage() const { return kmax_; }

 private:
  void grow(int64_t positions, const at::Tensor& like);
  int64_t page_;
  int64_t length_ = 0;
  at::Tensor k_, v_, kmin_, kmax_;
};

struct DecodeOptions {
  bool allow_kernel = true;  // CUDA: the paged kernels (GPU builds); off: the tensor reference
  int splits = 0;            // CUDA: blocks per (batch, head) over the pages; 0: automatic
  // CUDA, automatic splits of a sparse step: blocks for about this many of the largest budget's
  // pages per warp (fewer: more warps in flight, each paying its set-up and merge for less work).
  int kept_pages_per_warp = 1;
  // CUDA kernels: the query's position (cache.length() - 1) as int64 [1] on the device; the
  // kernels read it there and size their grids from the cache's capacity, so that a CUDA graph
  // captured once replays at every length. Undefined: the host's length. Needs the kernels.
  at::Tensor position;
};

// What one decode step kept, for tests and reads.
struct DecodeSelection {
  at::Tensor keep;   // bool [B, H, pages]: the pages each query head kept
  at::Tensor reads;  // int64 [B, H]: the keys each query head read
  // The KV side: per (batch, KV head) the keys of the union of its query heads' pages (what a
  // kernel fetches), float64 [B, Hkv], for a cache of `length` positions in pages of `page`.
  at::Tensor kv_reads(int64_t n_head_kv, int64_t page, int64_t length) const;
};

// Attention of one new query per batch row, q [B, H, 1, D], at position cache.length() - 1 (the
// cache already holds its key and value). `rule`: nullptr or dense reads every key; a top_k rule
// must be page-granular with the cache's page size (InputError otherwise) and is applied as
// pages.h defines. Returns [B, H, 1, D] in q's dtype; fills *selection when given.
at::Tensor decode_attend(const at::Tensor& q, const PagedKvCache& cache, double scale,
                         const LayerRule* rule, const DecodeOptions& options = {},
                         DecodeSelection* selection = nullptr);

// Whether this build has the CUDA decode kernels.
bool decode_kernels_built();

// Whether the CUDA kernels take a decode step of this dtype and head layout over a cache of
// `capacity` positions under `rule`
// (nullptr or dense: every page; a top_k rule selecting pages of `page`, without :topk or
// :oracle), so that it can run with a device position (DecodeOptions::position).
bool decode_kernels_take(at::ScalarType dtype, int64_t n_head, int64_t n_head_kv, int64_t head_dim,
                         int64_t page, int64_t capacity, const LayerRule* rule);

// A CUDA graph of the device work of one call (a decode step, decoder.cpp): capture() records
// `fn` once on a side stream (its allocations come from the graph's own memory pool and stay
// valid for replays), replay() runs the recorded work again on the current stream. GPU builds
// only (UsageError otherwise).
class DecodeGraph {
 public:
  DecodeGraph();
  ~DecodeGraph();
  DecodeGraph(const DecodeGraph&) = delete;
  DecodeGraph& operator=(const DecodeGraph&) = delete;
  void capture(const std::function<void()>& fn);
  void replay();
  bool captured() const { return captured_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  bool captured_ = false;
};

}  // namespace csa
