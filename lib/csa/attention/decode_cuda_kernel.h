// The paged decode kernels for CUDA (decode_cuda_kernel.cu) behind a plain C++ interface (nvcc
// compiles no libtorch header); decode.cpp is the libtorch side. One decode step of one layer:
//   1. page bounds: for every full page and query head, the bound of scale·q·key (pages.h);
//   2. select: per (batch, query head) the kept pages (rule.h's page rule: the sink, the newest
//      page, the best bounds until the budget is reached; ties to the larger page), ascending;
//   3. attend: split over the kept pages (flash-decoding), online softmax and P·V over the kept
//      pages' keys only, one partial (max, sum, accumulator) per split;
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
  int page = 16;
  float scale = 1;
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
  // Optional output: the kept pages, int32 [B, H, pages] ascending, and their count [B, H].
  int32_t* pages_out = nullptr;
  int32_t* count_out = nullptr;
};

// Bytes of workspace one call needs.
int64_t decode_workspace_bytes(const PagedDecodeArgs& a);
// Launches on `stream` (a cudaStream_t). Returns a CUDA error string, or nullptr on success.
const char* paged_decode(const PagedDecodeArgs& args, void* stream);

}  // namespace csa::cuda
