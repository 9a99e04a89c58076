// Paged decode kernels (decode_cuda_kernel.h says what each step does). Semantics are pages.h's;
// the [gpu] tier checks kept pages, reads and outputs against it.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "csa/attention/decode_cuda_kernel.h"

namespace csa::cuda {
namespace {

constexpr int kSelectThreads = 256;
constexpr int kAttendWarps = 4;
constexpr int kKeyTile = 8;  // keys loaded at once per warp

template <typename T>
__device__ __forceinline__ float to_f(T x);
template <>
__device__ __forceinline__ float to_f<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ float to_f<__half>(__half x) {
  return __half2float(x);
}
template <>
__device__ __forceinline__ float to_f<__nv_bfloat16>(__nv_bfloat16 x) {
  return __bfloat162float(x);
}
template <typename T>
__device__ __forceinline__ T from_f(float x);
template <>
__device__ __forceinline__ float from_f<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ __half from_f<__half>(float x) {
  return __float2half_rn(x);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

// Monotone map of floats to unsigned keys (-0 and +0 equal, as they compare).
__device__ __forceinline__ uint32_t order_key(float f) {
  if (f == 0.0f) f = 0.0f;
  const uint32_t u = __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

struct Layout {
  float* bounds;   // [B, H, NPc]
  int32_t* list;   // [B, H, NPcap]
  int32_t* count;  // [B, H]
  float* part;     // [B, H, splits, D + 2]
  int NPf, NPc, NPcap;
};

int64_t align256(int64_t x) { return (x + 255) / 256 * 256; }

Layout layout_of(const PagedDecodeArgs& a) {
  Layout L{};
  L.NPf = a.S / a.page;
  L.NPc = static_cast<int>(a.capacity / a.page);
  L.NPcap = static_cast<int>((a.capacity + a.page - 1) / a.page);
  const int64_t bh = int64_t(a.B) * a.H;
  char* p = static_cast<char*>(a.workspace);
  L.bounds = reinterpret_cast<float*>(p);
  p += align256(bh * L.NPc * 4);
  L.list = reinterpret_cast<int32_t*>(p);
  p += align256(bh * L.NPcap * 4);
  L.count = reinterpret_cast<int32_t*>(p);
  p += align256(bh * 4);
  L.part = reinterpret_cast<float*>(p);
  if (a.pages_out != nullptr) L.list = a.pages_out;
  if (a.count_out != nullptr) L.count = a.count_out;
  return L;
}

// Step 1: block (page chunk, KV head, batch); thread = one full page, bounds for the G heads.
template <typename T>
__global__ void bounds_kernel(PagedDecodeArgs a, Layout L) {
  extern __shared__ float qs[];  // [G][D], scale folded in
  const int G = a.H / a.Hkv, g = blockIdx.y, b = blockIdx.z, D = a.D;
  const T* q = static_cast<const T*>(a.q);
  for (int i = threadIdx.x; i < G * D; i += blockDim.x)
    qs[i] = to_f(q[b * a.q_sb + int64_t(g * G + i / D) * a.q_sh + i % D]);
  __syncthreads();
  const int m = blockIdx.x * blockDim.x + threadIdx.x;
  if (m >= L.NPf) return;
  const int64_t row = ((int64_t(b) * a.Hkv + g) * L.NPc + m) * D;
  const T* mn = static_cast<const T*>(a.kmin) + row;
  const T* mx = static_cast<const T*>(a.kmax) + row;
  for (int gi = 0; gi < G; ++gi) {
    const float* qq = qs + gi * D;
    float acc = 0;
    for (int d = 0; d < D; ++d) {
      const float x = qq[d];
      acc += fmaxf(x * to_f(mn[d]), x * to_f(mx[d]));
    }
    L.bounds[(int64_t(b) * a.H + g * G + gi) * L.NPc + m] = acc * a.scale;
  }
}

// Step 2: block (query head, batch). The page rule of rule.h / pages.h, a second time.
__global__ void select_kernel(PagedDecodeArgs a, Layout L) {
  extern __shared__ uint32_t keys[];  // [NPc] candidate keys, then [NPcap] flags (bytes)
  __shared__ uint32_t hist[256];
  __shared__ uint32_t s_prefix;
  __shared__ int s_r;
  __shared__ int s_cnt[kSelectThreads], s_keys[kSelectThreads];
  uint8_t* flags = reinterpret_cast<uint8_t*>(keys + L.NPc);
  const int h = blockIdx.x, b = blockIdx.y, tid = threadIdx.x, nt = blockDim.x;
  const int P = a.page, n = a.S, pos = n - 1, pages = (n + P - 1) / P, newest = pos / P;
  const int64_t bh = int64_t(b) * a.H + h;
  int32_t* out = L.list + bh * L.NPcap;
  int band = 0;
  while (band + 1 < a.NB && a.band_start[band + 1] <= pos) ++band;
  const int kb = min(a.budget[h * a.NB + band], n);
  const int forced = newest == 0 ? n : P + (pos - newest * P + 1);
  const int extra = kb < n && kb > forced ? (kb - forced + P - 1) / P : 0;
  const int nc = max(newest - 1, 0);  // candidate pages 1 .. newest - 1
  if (kb >= n || extra >= nc) {       // every page
    for (int i = tid; i < pages; i += nt) out[i] = i;
    if (tid == 0) {
      L.count[bh] = pages;
      if (a.q_reads != nullptr) a.q_reads[bh] = n;
    }
    return;
  }
  for (int i = tid; i < pages; i += nt) flags[i] = (i == 0 || i == newest) ? 1 : 0;
  __syncthreads();
  if (extra > 0) {
    const float* bd = L.bounds + bh * L.NPc;
    for (int i = tid; i < nc; i += nt) keys[i] = order_key(bd[i + 1]);
    uint32_t prefix = 0, mask = 0;
    int r = extra;  // rank of the threshold among the keys matching prefix
    for (int shift = 24; shift >= 0; shift -= 8) {
      for (int i = tid; i < 256; i += nt) hist[i] = 0;
      __syncthreads();
      for (int i = tid; i < nc; i += nt) {
        const uint32_t key = keys[i];
        if ((key & mask) == prefix) atomicAdd(&hist[(key >> shift) & 255u], 1u);
      }
      __syncthreads();
      if (tid == 0) {
        int cum = 0, bin = 255;
        for (; bin > 0; --bin) {
          if (cum + static_cast<int>(hist[bin]) >= r) break;
          cum += static_cast<int>(hist[bin]);
        }
        s_r = r - cum;
        s_prefix = prefix | (uint32_t(bin) << shift);
      }
      __syncthreads();
      r = s_r;
      prefix = s_prefix;
      mask |= 255u << shift;
    }
    // Keys above the threshold, then the r largest pages among those equal to it.
    const int per = (nc + nt - 1) / nt, c0 = min(tid * per, nc), c1 = min(c0 + per, nc);
    int eq = 0;
    for (int i = c0; i < c1; ++i) eq += keys[i] == prefix;
    s_cnt[tid] = eq;
    __syncthreads();
    int after = 0;
    for (int t = tid + 1; t < nt; ++t) after += s_cnt[t];
    for (int i = c1 - 1; i >= c0; --i) {
      const uint32_t key = keys[i];
      bool keep = key > prefix;
      if (key == prefix) keep = after++ < r;
      if (keep) flags[i + 1] = 1;
    }
    __syncthreads();
  }
  // Ordered compaction of the flags, and the keys read.
  const int per = (pages + nt - 1) / nt, p0 = min(tid * per, pages), p1 = min(p0 + per, pages);
  int cnt = 0, nkeys = 0;
  for (int i = p0; i < p1; ++i)
    if (flags[i]) ++cnt, nkeys += min(P, n - i * P);
  s_cnt[tid] = cnt;
  s_keys[tid] = nkeys;
  __syncthreads();
  int before = 0;
  for (int t = 0; t < tid; ++t) before += s_cnt[t];
  for (int i = p0; i < p1; ++i)
    if (flags[i]) out[before++] = i;
  if (tid == 0) {
    int total = 0, total_keys = 0;
    for (int t = 0; t < nt; ++t) total += s_cnt[t], total_keys += s_keys[t];
    L.count[bh] = total;
    if (a.q_reads != nullptr) a.q_reads[bh] = total_keys;
  }
}

// Step 3: block (split, query head, batch), a warp per page at a time; lane holds channels
// lane + 32 e. Writes the split's (max, sum, accumulator).
template <typename T, int E>
__global__ void attend_kernel(PagedDecodeArgs a, Layout L, bool dense) {
  __shared__ float s_m[kAttendWarps], s_l[kAttendWarps];
  __shared__ float s_acc[kAttendWarps][32 * E];
  const int split = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int G = a.H / a.Hkv, g = h / G, P = a.page, D = a.D, S = a.S;
  const int64_t bh = int64_t(b) * a.H + h;
  const int n = dense ? (S + P - 1) / P : L.count[bh];
  const int32_t* lst = L.list + bh * L.NPcap;
  const int per = (n + gridDim.x - 1) / gridDim.x, i0 = split * per, i1 = min(i0 + per, n);
  const T* qp = static_cast<const T*>(a.q) + b * a.q_sb + h * a.q_sh;
  float qv[E];
#pragma unroll
  for (int e = 0; e < E; ++e) {
    const int d = lane + 32 * e;
    qv[e] = d < D ? to_f(qp[d]) * a.scale : 0.f;
  }
  const int64_t base = (int64_t(b) * a.Hkv + g) * a.capacity * D;
  const T* kp = static_cast<const T*>(a.k) + base;
  const T* vp = static_cast<const T*>(a.v) + base;
  float m = -INFINITY, l = 0, acc[E];
#pragma unroll
  for (int e = 0; e < E; ++e) acc[e] = 0;
  for (int i = i0 + warp; i < i1; i += kAttendWarps) {
    const int pg = dense ? i : lst[i];
    const int j1 = min(pg * P + P, S);
    for (int j = pg * P; j < j1; j += kKeyTile) {
      float kt[kKeyTile][E], vt[kKeyTile][E];
#pragma unroll
      for (int t = 0; t < kKeyTile; ++t)
#pragma unroll
        for (int e = 0; e < E; ++e) {
          const int d = lane + 32 * e;
          const bool ok = j + t < j1 && d < D;
          kt[t][e] = ok ? to_f(kp[int64_t(j + t) * D + d]) : 0.f;
          vt[t][e] = ok ? to_f(vp[int64_t(j + t) * D + d]) : 0.f;
        }
      float s[kKeyTile];
      float tm = m;
#pragma unroll
      for (int t = 0; t < kKeyTile; ++t) {
        float x = 0;
#pragma unroll
        for (int e = 0; e < E; ++e) x += qv[e] * kt[t][e];
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) x += __shfl_xor_sync(0xffffffffu, x, off);
        s[t] = j + t < j1 ? x : -INFINITY;
        tm = fmaxf(tm, s[t]);
      }
      const float corr = __expf(m - tm);
      l *= corr;
#pragma unroll
      for (int e = 0; e < E; ++e) acc[e] *= corr;
#pragma unroll
      for (int t = 0; t < kKeyTile; ++t) {
        const float p = __expf(s[t] - tm);
        l += p;
#pragma unroll
        for (int e = 0; e < E; ++e) acc[e] += p * vt[t][e];
      }
      m = tm;
    }
  }
  if (lane == 0) s_m[warp] = m, s_l[warp] = l;
#pragma unroll
  for (int e = 0; e < E; ++e) s_acc[warp][lane + 32 * e] = acc[e];
  __syncthreads();
  float M = -INFINITY;
  for (int w = 0; w < kAttendWarps; ++w) M = fmaxf(M, s_m[w]);
  float* pp = L.part + (bh * gridDim.x + split) * (D + 2);
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float x = 0;
    for (int w = 0; w < kAttendWarps; ++w)
      if (s_m[w] > -INFINITY) x += s_acc[w][d] * __expf(s_m[w] - M);
    pp[2 + d] = x;
  }
  if (threadIdx.x == 0) {
    float sum = 0;
    for (int w = 0; w < kAttendWarps; ++w)
      if (s_m[w] > -INFINITY) sum += s_l[w] * __expf(s_m[w] - M);
    pp[0] = M;
    pp[1] = sum;
  }
}

// Step 4: block (query head, batch).
template <typename T>
__global__ void combine_kernel(PagedDecodeArgs a, Layout L) {
  const int h = blockIdx.x, b = blockIdx.y, D = a.D, ns = a.splits;
  const int64_t bh = int64_t(b) * a.H + h;
  const float* pp = L.part + bh * ns * (D + 2);
  float M = -INFINITY;
  for (int s = 0; s < ns; ++s) M = fmaxf(M, pp[s * (D + 2)]);
  float sum = 0;
  for (int s = 0; s < ns; ++s)
    if (pp[s * (D + 2)] > -INFINITY) sum += pp[s * (D + 2) + 1] * __expf(pp[s * (D + 2)] - M);
  T* out = static_cast<T*>(a.out) + bh * D;
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float x = 0;
    for (int s = 0; s < ns; ++s)
      if (pp[s * (D + 2)] > -INFINITY) x += pp[s * (D + 2) + 2 + d] * __expf(pp[s * (D + 2)] - M);
    out[d] = from_f<T>(x / sum);
  }
}

template <typename T, int E>
cudaError_t launch_attend(const PagedDecodeArgs& a, const Layout& L, bool dense, cudaStream_t st) {
  attend_kernel<T, E><<<dim3(a.splits, a.H, a.B), 32 * kAttendWarps, 0, st>>>(a, L, dense);
  return cudaGetLastError();
}

template <typename T>
const char* run(const PagedDecodeArgs& a, cudaStream_t st) {
  const Layout L = layout_of(a);
  const bool dense = a.budget == nullptr;
  if (!dense) {
    const int G = a.H / a.Hkv;
    if (L.NPf > 0) {
      const size_t smem = size_t(G) * a.D * 4;
      if (smem > 48 * 1024)
        cudaFuncSetAttribute(bounds_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             static_cast<int>(smem));
      bounds_kernel<T><<<dim3((L.NPf + 127) / 128, a.Hkv, a.B), 128, smem, st>>>(a, L);
      if (cudaError_t e = cudaGetLastError()) return cudaGetErrorString(e);
    }
    const size_t smem = size_t(L.NPc) * 4 + ((L.NPcap + 3) / 4) * 4;
    if (smem > 48 * 1024)
      cudaFuncSetAttribute(select_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                           static_cast<int>(smem));
    select_kernel<<<dim3(a.H, a.B), kSelectThreads, smem, st>>>(a, L);
    if (cudaError_t e = cudaGetLastError()) return cudaGetErrorString(e);
  }
  cudaError_t e;
  if (a.D <= 64)
    e = launch_attend<T, 2>(a, L, dense, st);
  else if (a.D <= 96)
    e = launch_attend<T, 3>(a, L, dense, st);
  else if (a.D <= 128)
    e = launch_attend<T, 4>(a, L, dense, st);
  else
    e = launch_attend<T, 8>(a, L, dense, st);
  if (e != cudaSuccess) return cudaGetErrorString(e);
  combine_kernel<T><<<dim3(a.H, a.B), 128, 0, st>>>(a, L);
  if (cudaError_t e2 = cudaGetLastError()) return cudaGetErrorString(e2);
  return nullptr;
}

}  // namespace

int64_t decode_workspace_bytes(const PagedDecodeArgs& a) {
  const int64_t bh = int64_t(a.B) * a.H;
  const int64_t npc = a.capacity / a.page, npcap = (a.capacity + a.page - 1) / a.page;
  return align256(bh * npc * 4) + align256(bh * npcap * 4) + align256(bh * 4) +
         align256(bh * a.splits * (a.D + 2) * 4);
}

const char* paged_decode(const PagedDecodeArgs& a, void* stream) {
  auto st = static_cast<cudaStream_t>(stream);
  switch (a.type) {
    case ElemType::kFloat32:
      return run<float>(a, st);
    case ElemType::kFloat16:
      return run<__half>(a, st);
    case ElemType::kBFloat16:
      return run<__nv_bfloat16>(a, st);
  }
  return "unknown element type";
}

}  // namespace csa::cuda
