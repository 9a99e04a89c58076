// Device helpers shared by csa's CUDA kernels (attention/*_cuda_*.cu, model/*_cuda_kernel.cu): the
// element-type dispatch, the element conversions and rounding, the float order key their radix
// selects rank by, 16-byte unpacking, a block reduction in a fixed order, and the PTX
// wrappers (cp.async; ldmatrix, mma.sync m16n8k16 for bf16 / fp16 and m16n8k8 for tf32, both with
// fp32 accumulation). Compiled by nvcc only (no libtorch).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "csa/attention/fused_cuda_kernel.h"  // ElemType

namespace csa::cuda {

// The one mapping from ElemType to the kernels' element type: f(ElemTag<T>{}) with T float,
// __half or __nv_bfloat16 (host code: `using T = typename decltype(tag)::type;`), and what it
// returns; `otherwise` for a value outside the enum.
template <typename T>
struct ElemTag {
  using type = T;
};
template <typename R, typename F>
R with_elem_type(ElemType type, R otherwise, F&& f) {
  switch (type) {
    case ElemType::kFloat32:
      return f(ElemTag<float>{});
    case ElemType::kFloat16:
      return f(ElemTag<__half>{});
    case ElemType::kBFloat16:
      return f(ElemTag<__nv_bfloat16>{});
  }
  return otherwise;
}

__device__ __forceinline__ float to_f(float x) { return x; }
__device__ __forceinline__ float to_f(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_f(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ void store(float x, float* p) { *p = x; }
__device__ __forceinline__ void store(float x, __half* p) { *p = __float2half_rn(x); }
__device__ __forceinline__ void store(float x, __nv_bfloat16* p) { *p = __float2bfloat16_rn(x); }
// x rounded to T and back: the value an element-wise ATen kernel's T tensor holds.
template <typename T>
__device__ __forceinline__ float round_to(float x) {
  T y;
  store(x, &y);
  return to_f(y);
}

// Order key of a float: a larger float gives a larger key; -0 and +0 give the same key (they
// compare equal, as in select.cpp). Three instructions: f + 0 turns -0 into +0 (round to
// nearest), then the sign bit spread over the word flips a negative float's bits and sets a
// positive one's top bit.
__device__ __forceinline__ uint32_t order_key(float f) {
  const uint32_t u = __float_as_uint(__fadd_rn(f, 0.0f));
  return u ^ (static_cast<uint32_t>(static_cast<int32_t>(u) >> 31) | 0x80000000u);
}

// The float whose order key is u (u a key order_key gives: -0 comes back as +0).
__device__ __forceinline__ float key_value(uint32_t u) {
  return __uint_as_float((u & 0x80000000u) ? (u & 0x7fffffffu) : ~u);
}

// The float X with (s >= X) == (order_key(s) >= key) for every float s that is not NaN, for key
// in [0, 2^32]: -inf below the key of -inf, NaN (every comparison false) above the key of +inf.
__device__ __forceinline__ float key_floor(uint64_t key) {
  if (key <= 0x007fffffull) return -INFINITY;
  if (key > 0xff800000ull) return __uint_as_float(0x7fffffffu);
  return key_value(static_cast<uint32_t>(key));
}

// 2^x by the special-function unit (ex2.approx.ftz: about 2 ulp; 2^-inf = +0).
__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// Elements of T in 16 bytes, and 16 raw bytes of T as that many floats.
template <typename T>
constexpr int kPer16 = 16 / static_cast<int>(sizeof(T));

__device__ __forceinline__ void unpack16(const uint4& u, float* o, const float*) {
  o[0] = __uint_as_float(u.x), o[1] = __uint_as_float(u.y), o[2] = __uint_as_float(u.z),
  o[3] = __uint_as_float(u.w);
}
__device__ __forceinline__ float2 to_float2(__half2 h) { return __half22float2(h); }
__device__ __forceinline__ float2 to_float2(__nv_bfloat162 h) { return __bfloat1622float2(h); }
template <typename H2>
__device__ __forceinline__ void unpack16_pairs(const uint4& u, float* o) {
  const H2* h = reinterpret_cast<const H2*>(&u);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f = to_float2(h[i]);
    o[2 * i] = f.x, o[2 * i + 1] = f.y;
  }
}
__device__ __forceinline__ void unpack16(const uint4& u, float* o, const __half*) {
  unpack16_pairs<__half2>(u, o);
}
__device__ __forceinline__ void unpack16(const uint4& u, float* o, const __nv_bfloat16*) {
  unpack16_pairs<__nv_bfloat162>(u, o);
}
// 16 bytes at p (16-byte aligned) as floats.
template <typename T>
__device__ __forceinline__ void load16(const T* p, float* o) {
  unpack16(*reinterpret_cast<const uint4*>(p), o, p);
}

// A reduction over the block's THREADS threads in a fixed order (a tree over thread indices), so
// the result is deterministic. `red` holds THREADS floats.
template <int THREADS, typename Op>
__device__ float block_reduce(float x, float* red, Op op) {
  red[threadIdx.x] = x;
  __syncthreads();
  for (int s = THREADS / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) red[threadIdx.x] = op(red[threadIdx.x], red[threadIdx.x + s]);
    __syncthreads();
  }
  const float r = red[0];
  __syncthreads();
  return r;
}

// ---- asynchronous copies and tensor cores (sm_80+) ----

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
// 16 bytes global -> shared without registers, zero-filled when !valid (gmem must still be a
// mapped address), in the thread's current group.
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(smem)), "l"(gmem),
               "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}
// Until at most N of the thread's groups are in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}
__device__ __forceinline__ void ldsm_x4(const void* p, uint32_t& r0, uint32_t& r1, uint32_t& r2,
                                        uint32_t& r3) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
               : "r"(smem_u32(p)));
}
__device__ __forceinline__ void ldsm_x4_t(const void* p, uint32_t& r0, uint32_t& r1, uint32_t& r2,
                                          uint32_t& r3) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
               : "r"(smem_u32(p)));
}

// c (16x8, fp32) += a (16x16) * b (16x8), a row-major, b column-major.
template <typename T>
__device__ __forceinline__ void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

// c (16x8, fp32) += a (16x8, tf32) * b (8x8, tf32), a row-major, b column-major: a0 (g, t),
// a1 (g + 8, t), a2 (g, t + 4), a3 (g + 8, t + 4); b0 (k t, n g), b1 (k t + 4, n g); c as m16n8k16
// (g = lane / 4, t = lane % 4).
__device__ __forceinline__ void mma1688_tf32(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                             uint32_t b1) {
  asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Two floats as one register of two T (lo in the low half: the lower column).
template <typename T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&h);
  } else {
    const __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&h);
  }
}

}  // namespace csa::cuda
