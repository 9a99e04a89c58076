// The tiled top-k attention kernel's host side (fused_cuda_kernel.h): which arguments it takes,
// the shared memory it needs, the dispatch by element type to the launches built in
// fused_cuda_tiled_{f32,bf16,f16}.cu, and the float32 split's test hook. The kernel itself:
// fused_cuda_tiled.cuh.
#include <cuda_runtime.h>

#include <cstdint>

#include "csa/attention/fused_cuda_kernel.h"
#include "csa/attention/fused_cuda_tiled.cuh"

namespace csa::cuda {
namespace {

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

// split_tf32 against two cvt.rna.tf32.f32 (hi, then the remainder) for every float32 bit pattern
// (a grid-stride loop); counts into *bad the patterns whose parts differ (a NaN
// part against a NaN part counts as equal: inf's remainder) or, for a NaN, whose parts hold no
// NaN.
__global__ void split_check_kernel(unsigned long long* bad) {
  unsigned long long n = 0;
  const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
  for (uint64_t i = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (1ull << 32);
       i += stride) {
    const float x = __uint_as_float(static_cast<uint32_t>(i));
    uint32_t hi, lo, rh, rl;
    tiled::split_tf32(x, hi, lo);
    asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(rh) : "f"(x));
    asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(rl) : "f"(__fsub_rn(x, __uint_as_float(rh))));
    const auto nan = [](uint32_t u) { return isnan(__uint_as_float(u)); };
    const bool ok =
        isnan(x) ? (nan(hi) || nan(lo)) : (hi == rh && (lo == rl || (nan(lo) && nan(rl))));
    n += ok ? 0u : 1u;
  }
  if (n > 0) atomicAdd(bad, n);
}

}  // namespace

int64_t tiled_tf32_split_mismatches() {
  unsigned long long* d = nullptr;
  if (cudaMalloc(&d, sizeof(*d)) != cudaSuccess) return -1;
  unsigned long long h = 0;
  bool ok = cudaMemset(d, 0, sizeof(*d)) == cudaSuccess;
  if (ok) {
    split_check_kernel<<<4096, 256>>>(d);
    ok = cudaGetLastError() == cudaSuccess &&
         cudaMemcpy(&h, d, sizeof(h), cudaMemcpyDeviceToHost) == cudaSuccess;
  }
  cudaFree(d);
  return ok ? static_cast<int64_t>(h) : -1;
}

int64_t topk_attention_tiled_smem_bytes(int D, ElemType type) {
  if (type == ElemType::kFloat32)
    return D == 64    ? tiled::Layout<float, 64>::kBytes
           : D == 128 ? tiled::Layout<float, 128>::kBytes
                      : 0;
  return D == 64    ? tiled::Layout<__half, 64>::kBytes
         : D == 128 ? tiled::Layout<__half, 128>::kBytes
                    : 0;
}

bool topk_attention_tiled_supported(const TopKAttentionArgs& a) {
  if (a.D != 64 && a.D != 128) return false;
  if (a.Hkv < 1 || a.H % a.Hkv != 0 || a.H / a.Hkv > tiled::kBM) return false;
  if (a.T < 1 || a.S < a.T || a.S > (1 << 16) || a.B > 65535 || a.Hkv > 65535) return false;
  if (!aligned16(a.q) || !aligned16(a.k) || !aligned16(a.v) || !aligned16(a.out)) return false;
  const int64_t vec = a.type == ElemType::kFloat32 ? 4 : 8;  // elements per 16 bytes
  for (int64_t s : {a.q_sb, a.q_sh, a.q_st, a.k_sb, a.k_sh, a.k_ss, a.v_sb, a.v_sh, a.v_ss})
    if (s % vec != 0) return false;
  return topk_attention_tiled_smem_bytes(a.D, a.type) <= topk_attention_smem_limit();
}

int64_t topk_attention_scratch_bytes(const TopKAttentionArgs& a) {
  if (!topk_attention_tiled_supported(a)) return 0;
  return tiled::group_max_offset(a) + tiled::group_max_bytes(a);
}

const char* topk_attention_tiled(const TopKAttentionArgs& a, void* stream) {
  const auto st = static_cast<cudaStream_t>(stream);
  switch (a.type) {
    case ElemType::kFloat32:
      return tiled::launch_f32(a, st);
    case ElemType::kBFloat16:
      return tiled::launch_bf16(a, st);
    default:
      return tiled::launch_f16(a, st);
  }
}

}  // namespace csa::cuda
