// Fused causal top-k attention on CUDA, the row kernel (float32, and head dims or layouts that the
// tiled tensor-core kernel of fused_cuda_tiled.cuh does not take): one block per (query row, KV
// head, batch), looping over the KV group's query heads. For each head the block computes the row's
// causal scores into shared memory (never HBM), finds the budget's k-th largest score by a radix
// select on the scores' order keys (four 8-bit passes of a shared histogram), keeps every key above
// it plus the most recent keys equal to it (rule.h's tie rule), and runs the softmax and P·V over
// the kept keys only (V rows of dropped keys are not read). Rows whose budget covers their causal
// keys keep them all. Reads are counted in the kernel: keys kept per query head, and per KV head
// the union over its query heads (a bitmask in shared memory). Every reduction runs in a fixed
// order and the counters are integers, so the same input gives bit-identical output.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "csa/attention/cuda_common.cuh"
#include "csa/attention/fused_cuda_kernel.h"

namespace csa::cuda {
namespace {

constexpr int kThreads = 256;

// q·k over one key row: 16-byte loads where the row allows (8 halves / 4 floats at a time).
__device__ __forceinline__ float dot_row(const float* kr, const float* qv, int D, bool vec) {
  float acc = 0;
  if (vec) {
    const float4* k4 = reinterpret_cast<const float4*>(kr);
    for (int i = 0; i < D / 4; ++i) {
      const float4 x = __ldg(k4 + i);
      acc = fmaf(qv[4 * i], x.x, acc);
      acc = fmaf(qv[4 * i + 1], x.y, acc);
      acc = fmaf(qv[4 * i + 2], x.z, acc);
      acc = fmaf(qv[4 * i + 3], x.w, acc);
    }
    return acc;
  }
  for (int i = 0; i < D; ++i) acc = fmaf(qv[i], kr[i], acc);
  return acc;
}

template <typename T>
__device__ __forceinline__ float dot_row_half(const T* kr, const float* qv, int D, bool vec) {
  float acc = 0;
  if (vec) {
    const uint4* k8 = reinterpret_cast<const uint4*>(kr);
    for (int i = 0; i < D / 8; ++i) {
      float f[8];
      unpack16(__ldg(k8 + i), f, kr);
#pragma unroll
      for (int e = 0; e < 8; ++e) acc = fmaf(qv[8 * i + e], f[e], acc);
    }
    return acc;
  }
  for (int i = 0; i < D; ++i) acc = fmaf(qv[i], to_f(kr[i]), acc);
  return acc;
}

__device__ __forceinline__ float dot_row(const __half* kr, const float* qv, int D, bool vec) {
  return dot_row_half(kr, qv, D, vec);
}
__device__ __forceinline__ float dot_row(const __nv_bfloat16* kr, const float* qv, int D,
                                         bool vec) {
  return dot_row_half(kr, qv, D, vec);
}

// Adds 1 to hist[bin] for every lane of the warp that has one (bin >= 0), one atomic per
// distinct bin: the order keys of a row share their top bits, and lanes hitting the same shared
// counter would serialise.
__device__ __forceinline__ void warp_hist_add(uint32_t* hist, int bin) {
  const unsigned active = __activemask();
  const unsigned same = __match_any_sync(active, bin);
  if (bin >= 0 && (__ffs(same) - 1) == (threadIdx.x & 31))
    atomicAdd(&hist[bin], static_cast<uint32_t>(__popc(same)));
}

// Block reductions in a fixed order (cuda_common.cuh): deterministic.
__device__ float block_sum(float x, float* red) {
  return block_reduce<kThreads>(x, red, [](float a, float b) { return a + b; });
}
__device__ float block_max(float x, float* red) {
  return block_reduce<kThreads>(x, red, [](float a, float b) { return fmaxf(a, b); });
}

template <typename T>
__global__ void __launch_bounds__(kThreads) topk_attention_kernel(TopKAttentionArgs a) {
  extern __shared__ float smem[];
  float* s = smem;        // [S] scores, then probabilities
  float* qv = s + a.S;    // [D] the query row
  float* red = qv + a.D;  // [kThreads] reductions, P·V partials
  uint32_t* hist = reinterpret_cast<uint32_t*>(red + kThreads);  // [256]
  int* ctrl = reinterpret_cast<int*>(hist + 256);                // [8]
  uint32_t* maskw = reinterpret_cast<uint32_t*>(ctrl + 8);       // [ceil(S / 32)] KV union

  const int t = blockIdx.x, kvh = blockIdx.y, b = blockIdx.z, tid = threadIdx.x;
  const int G = a.H / a.Hkv;
  const int pos = a.S - a.T + t;
  const int n = pos + 1;  // causal keys
  const T* K = static_cast<const T*>(a.k) + b * a.k_sb + kvh * a.k_sh;
  const T* V = static_cast<const T*>(a.v) + b * a.v_sb + kvh * a.v_sh;
  int band = 0;
  while (band + 1 < a.NB && a.band_start[band + 1] <= pos) ++band;
  if (G > 1)
    for (int w = tid; w < (n + 31) / 32; w += kThreads) maskw[w] = 0;
  const int NG = kThreads / a.D;  // P·V: NG groups of D threads split the keys
  const int gi = tid / a.D, d = tid % a.D;
  int kb = n;
  // 16-byte loads of K rows when every row start is 16-byte aligned and D fills whole vectors.
  constexpr int kVec = 16 / sizeof(T);
  const bool vec = a.D % kVec == 0 && a.k_ss % kVec == 0 && a.k_sb % kVec == 0 &&
                   a.k_sh % kVec == 0 && (reinterpret_cast<uintptr_t>(a.k) % 16) == 0;

  for (int g = 0; g < G; ++g) {
    const int h = kvh * G + g;
    const T* Q = static_cast<const T*>(a.q) + b * a.q_sb + h * a.q_sh + int64_t(t) * a.q_st;
    for (int i = tid; i < a.D; i += kThreads) qv[i] = to_f(Q[i]);
    __syncthreads();
    for (int j = tid; j < n; j += kThreads)
      s[j] = dot_row(K + int64_t(j) * a.k_ss, qv, a.D, vec) * a.scale;
    kb = min(a.budget[h * a.NB + band], n);
    __syncthreads();

    // The kb-th largest order key (tau) and how many keys equal to it are kept (need).
    const bool all = kb >= n;
    uint32_t tau = 0;
    int j_cut = 0;
    if (!all) {
      uint32_t prefix = 0, pmask = 0;
      int kk = kb, equal = 0;
      for (int pass = 0; pass < 4; ++pass) {
        const int shift = 24 - 8 * pass;
        for (int i = tid; i < 256; i += kThreads) hist[i] = 0;
        __syncthreads();
        // every thread of the block runs the same number of iterations (warp_hist_add is a
        // warp-wide operation); lanes past the row add nothing
        for (int j0 = 0; j0 < n; j0 += kThreads) {
          const int j = j0 + tid;
          int bin = -1;
          if (j < n) {
            const uint32_t u = order_key(s[j]);
            if ((u & pmask) == prefix) bin = static_cast<int>((u >> shift) & 255u);
          }
          warp_hist_add(hist, bin);
        }
        __syncthreads();
        if (tid == 0) {
          int cum = 0, bin = 255;
          for (; bin > 0; --bin) {
            if (cum + static_cast<int>(hist[bin]) >= kk) break;
            cum += static_cast<int>(hist[bin]);
          }
          ctrl[0] = bin;
          ctrl[1] = kk - cum;
          ctrl[2] = static_cast<int>(hist[bin]);
        }
        __syncthreads();
        prefix |= static_cast<uint32_t>(ctrl[0]) << shift;
        pmask |= 255u << shift;
        kk = ctrl[1];
        equal = ctrl[2];
      }
      tau = prefix;
      // Keys equal to tau: keep the kk most recent (the largest indices). One warp walks down
      // from the newest key counting equal keys 32 at a time.
      if (kk < equal) {
        if (tid < 32) {
          int acc = 0, cut = 0;
          for (int base = n - 1; base >= 0; base -= 32) {
            const int j = base - tid;
            const bool eq = j >= 0 && order_key(s[j]) == tau;
            const unsigned bal = __ballot_sync(0xffffffffu, eq);
            const int c = __popc(bal);
            if (acc + c >= kk) {
              int need = kk - acc;
              unsigned m = bal;
              int lane = __ffs(m) - 1;
              while (--need > 0) {
                m &= m - 1;
                lane = __ffs(m) - 1;
              }
              cut = base - lane;
              break;
            }
            acc += c;
          }
          if (tid == 0) ctrl[3] = cut;
        }
        __syncthreads();
        j_cut = ctrl[3];
      }
    }

    // Softmax over the kept keys (the row's maximum is always kept) and the KV union.
    float m = -INFINITY;
    for (int j = tid; j < n; j += kThreads) m = fmaxf(m, s[j]);
    m = block_max(m, red);
    float part = 0;
    for (int j = tid; j < n; j += kThreads) {
      const float x = s[j];
      const uint32_t u = order_key(x);
      const bool keep = all || u > tau || (u == tau && j >= j_cut);
      const float p = keep ? expf(x - m) : 0.0f;
      s[j] = p;
      part += p;
      if (keep && G > 1) atomicOr(&maskw[j >> 5], 1u << (j & 31));
    }
    const float total = block_sum(part, red);  // also orders the writes to s before the reads

    // P·V over the kept keys: group gi takes keys gi, gi + NG, ...; groups summed in order.
    float acc = 0;
    if (gi < NG)
      for (int j = gi; j < n; j += NG) {
        const float p = s[j];
        if (p != 0.0f) acc = fmaf(p, to_f(V[int64_t(j) * a.v_ss + d]), acc);
      }
    red[tid] = acc;
    __syncthreads();
    if (tid < a.D) {
      float o = 0;
      for (int g2 = 0; g2 < NG; ++g2) o += red[g2 * a.D + tid];
      T* out = static_cast<T*>(a.out) + ((int64_t(b) * a.H + h) * a.T + t) * a.D;
      store(o / total, out + tid);
    }
    if (tid == 0) atomicAdd(&a.q_reads[h], static_cast<unsigned long long>(kb));
    __syncthreads();  // before the next head reuses s, qv and red
  }

  if (G > 1) {
    int c = 0;
    for (int w = tid; w < (n + 31) / 32; w += kThreads) c += __popc(maskw[w]);
    if (c > 0) atomicAdd(&a.kv_reads[kvh], static_cast<unsigned long long>(c));
  } else if (tid == 0) {
    atomicAdd(&a.kv_reads[kvh], static_cast<unsigned long long>(kb));
  }
}

template <typename T>
const char* launch(const TopKAttentionArgs& a, cudaStream_t stream) {
  const int64_t smem = topk_attention_smem_bytes(a.S, a.D);
  if (smem > 48 * 1024) {
    const cudaError_t e = cudaFuncSetAttribute(
        topk_attention_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
    if (e != cudaSuccess) return cudaGetErrorString(e);
  }
  const dim3 grid(static_cast<unsigned>(a.T), static_cast<unsigned>(a.Hkv),
                  static_cast<unsigned>(a.B));
  topk_attention_kernel<T><<<grid, kThreads, smem, stream>>>(a);
  const cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? nullptr : cudaGetErrorString(e);
}

}  // namespace

int64_t topk_attention_smem_bytes(int S, int D) {
  return 4 * (int64_t(S) + D + kThreads + 256 + 8 + (int64_t(S) + 31) / 32);
}

int64_t topk_attention_smem_limit() {
  int dev = 0, v = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return 0;
  if (cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess)
    return 0;
  return v;
}

bool topk_attention_supported(const TopKAttentionArgs& a) {
  return topk_attention_tiled_supported(a) ||
         (a.D >= 1 && a.D <= kThreads &&
          topk_attention_smem_bytes(a.S, a.D) <= topk_attention_smem_limit());
}

const char* topk_attention(const TopKAttentionArgs& a, void* stream) {
  if (topk_attention_tiled_supported(a)) return topk_attention_tiled(a, stream);
  if (a.D < 1 || a.D > kThreads) return "head_dim must be in 1..256";
  const auto st = static_cast<cudaStream_t>(stream);
  return with_elem_type(a.type, static_cast<const char*>("unsupported element type"),
                        [&](auto tag) { return launch<typename decltype(tag)::type>(a, st); });
}

}  // namespace csa::cuda
