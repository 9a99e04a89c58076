// The paged decode kernels for CUDA (decode_cuda_kernel.cu) behind a plain C++ interface (nvcc
// compiles no libtorch header); decode.cpp is the libtorch side. One decode step of one layer:
//   1. page bounds: for every full page and query head, the bound of scale·q·key, or with
//      spread < 1 the score between it and the page centre's (rule.h, pages.h); with `group`
//      one score per KV head, the largest of its query heads';
//   2. select: per (batch, query head), or with `group` per (batch, KV head), the kept pages
//      (rule.h's page rule: the sink, the newest page and the ceil(k / P) best bounds; ties to
//      the larger page), as flags per page and query head;
//   3. attend: per (batch, KV head) split over the pages (flash-decoding): each page a query
//      head kept is read once for the group; online softmax and P·V over those keys only, one
//      partial (max, sum, accumulator) per split and query head;
//   4. combine: the splits' partials into the output row.
// Dense decoding runs 3 and 4 over every page.
#pragma once

#include <cstdint>

#include "csa/attention/fused_cuda_kernel.h"

namespace csa::cuda {

struct PagedDecodeArgs {
  const void* q = nullptr;     // [B, H, D] (strides q_sb, q_sh; unit stride along D)
  const void* k = nullptr;     // [B, Hkv, capacity, D] contiguous
  const void* v = nullptr;     // [B, Hkv, capacity, D] contiguous
  const void* kmin = nullptr;  // [B, Hkv, capacity / page, D] contiguous, full pages
  const void* kmax = nullptr;
  void* out = nullptr;  // [B, H, D] contiguous, q's type
  ElemType type = ElemType::kFloat32;
  int B = 0, H = 0, Hkv = 0, D = 0;
  int64_t q_sb = 0, q_sh = 0;
  int64_t capacity = 0;  // positions the K/V tensors hold
  int S = 0;             // keys in the cache; the query sits at position S - 1
  // Optional: the query's position on the device (int64; S = *position + 1 then, and `S` above
  // only sizes nothing). Grids are then sized from `capacity`, so one launch serves every length
  // up to it: a CUDA graph captured once replays at each position.
  const int64_t* position = nullptr;
  int page = 16;
  float scale = 1;
  float spread = 1;  // the page score's half-range weight (rule.h; 1: the bound)
  // rule.h's `group`: the G query heads of a KV head keep one set of pages (the largest of their
  // scores, the largest of their budgets).
  bool group = false;
  // Sparse: the rule's budget schedule (band starts [NB], budgets [H][NB], int32 on the device).
  // Null: dense (every page).
  const int32_t* band_start = nullptr;
  const int32_t* budget = nullptr;
  int NB = 1;
  int splits = 1;  // blocks per (batch, head) in step 3
  // Workspace on the device (decode_workspace_bytes): bounds, page lists, partials.
  void* workspace = nullptr;
  // Optional output: keys read per (batch, query head), int32 [B, H].
  int32_t* q_reads = nullptr;
  // Optional output: the kept pages as flags [B, Hkv, capacity pages, G] (query head g·G + gi
  // of KV head g kept the page), uint8; the first ceil(S / page) pages are written.
  uint8_t* flags_out = nullptr;
};

// Appends one position's keys and values [B, Hkv, D] (strides *_sb, *_sh; unit stride along D)
// at `position` of the cache's storage and, when that position completes a page, writes the
// page's per-channel minimum and maximum: one launch, position read on the device (or `pos`).
struct PagedAppendArgs {
  const void* k = nullptr;
  const void* v = nullptr;
  int64_t k_sb = 0, k_sh = 0, v_sb = 0, v_sh = 0;
  void* kc = nullptr;  // the cache's [B, Hkv, capacity, D] storage
  void* vc = nullptr;
  void* kmin = nullptr;  // [B, Hkv, capacity / page, D]
  void* kmax = nullptr;
  ElemType type = ElemType::kFloat32;
  int B = 0, Hkv = 0, D = 0, page = 16;
  int64_t capacity = 0;
  const int64_t* position = nullptr;  // on the device; null: `pos`
  int64_t pos = 0;
};
const char* paged_append(const PagedAppendArgs& args, void* stream);

// Whether the kernels take this head dim, query group size and element size (bytes): a key row
// must be a power-of-two number (<= 32) of 16-byte pieces, and G <= 8.
bool paged_decode_supports(int D, int G, int element_bytes);

// Blocks per (batch, KV head) over the pages in step 3 that fill the GPU in one wave (the
// attend kernel's occupancy on this device), at most one per 4 of `pages` and at least 1.
int decode_auto_splits(const PagedDecodeArgs& a, int64_t pages);

// Bytes of workspace one call needs.
int64_t decode_workspace_bytes(const PagedDecodeArgs& a);
// Launches on `stream` (a cudaStream_t). Returns a CUDA error string, or nullptr on success.
const char* paged_decode(const PagedDecodeArgs& args, void* stream);

}  // namespace csa::cuda
