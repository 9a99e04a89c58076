// Paged decode kernels (decode_cuda_kernel.h says what each step does). Semantics are pages.h's;
// the [gpu] tier checks kept pages, reads and outputs against it.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <mutex>
#include <tuple>
#include <type_traits>

#include "csa/attention/cuda_common.cuh"
#include "csa/attention/decode_cuda_kernel.h"

namespace csa::cuda {
namespace {

constexpr int kAttendWarps = 4;
constexpr int kAttendStages = 3;  // cp.async stages per warp in step 3

struct Layout {
  float* bounds;   // [B, H, NPc]
  uint8_t* flags;  // [B, Hkv, NPcap, G]: page kept by the group's query head gi
  float* part;     // [B, H, splits, D + 2]
  int* list;       // group: [B, Hkv, NPcap] the group's kept pages in page order
  int* count;      // group: [B, Hkv] their number
  int NPf, NPc, NPcap;
};

// Keys in the cache: from the device when the call gives the position there (CUDA graphs).
__device__ __forceinline__ int keys_in_cache(const PagedDecodeArgs& a) {
  return a.position != nullptr ? static_cast<int>(*a.position) + 1 : a.S;
}

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
  L.flags = reinterpret_cast<uint8_t*>(p);
  p += align256(bh * L.NPcap);
  L.part = reinterpret_cast<float*>(p);
  p += align256(bh * a.splits * (a.D + 2) * 4);
  L.list = reinterpret_cast<int*>(p);
  p += align256(int64_t(a.B) * a.Hkv * L.NPcap * 4);
  L.count = reinterpret_cast<int*>(p);
  if (a.flags_out != nullptr) L.flags = a.flags_out;
  return L;
}

// Step 2: block (query head, batch), or with `group` (KV head, batch) for the group's heads
// h0 .. h0 + NH - 1. The page rule of rule.h / pages.h, a second time: flags of the kept pages
// (every page written, so no clearing) and the keys each head reads. With `group` step 3 walks
// the list, so the flags are written only when the caller asked for them (flags_out).
// The candidates' order keys sit in shared memory; warp w owns [w·32J, (w + 1)·32J), lane l the
// candidates w·32J + 32j + l, so every pass reads shared memory without bank conflicts and the
// last passes count ties and list the kept pages by ballots, in page order.
// The threshold: a radix select over the key bits, highest first, in digits of up to
// kSelectBits bits, that starts below the bits every candidate shares (the block's smallest and
// largest key agree there: bounds of one cache share sign and most exponent bits) and stops after
// the digit whose bin holds exactly the keys still wanted (all of them are kept; later digits
// could only order them), so the comparisons below use the bits found (`mask`). Typically two
// histogram passes over 2,048 bins.
constexpr int kSelectThreads = 256;
constexpr int kSelectWarps = kSelectThreads / 32;
constexpr int kSelectBits = 11;
// Dynamic shared memory of select_kernel: the keys, then one kept-ballot word per 32 of them.
size_t select_smem_bytes(int npc) {
  return (size_t(npc) + size_t(npc + 31) / 32 + kSelectWarps) * 4;
}
__global__ void __launch_bounds__(kSelectThreads) select_kernel(PagedDecodeArgs a, Layout L) {
  extern __shared__ uint32_t keys[];  // [NPc] candidate keys, then the kept ballots
  __shared__ uint32_t hist[1 << kSelectBits];
  __shared__ uint32_t s_lo[kSelectWarps], s_hi[kSelectWarps], s_prefix;
  __shared__ int s_warp[kSelectWarps], s_kept[kSelectWarps], s_r, s_done;
  const int b = blockIdx.y, tid = threadIdx.x, nt = kSelectThreads;
  const int lane = tid & 31, warp = tid >> 5;
  const int G = a.H / a.Hkv, NH = a.group ? G : 1, h = blockIdx.x * NH, g = h / G;
  const int P = a.page, n = keys_in_cache(a), pos = n - 1, pages = (n + P - 1) / P,
            newest = pos / P;
  const int64_t bh = int64_t(b) * a.H + h;
  // Flags of head h + j at flags[page * G + j].
  uint8_t* flags = L.flags + (int64_t(b) * a.Hkv + g) * L.NPcap * G + h % G;
  // The position's band and the largest budget of the block's heads there, each warp alone: the
  // band starts a lane each (32 at a time), the heads' budgets a lane each (NH <= 8).
  int band = 0;
  for (int c = 1; c < a.NB; c += 32)
    band += __popc(__ballot_sync(0xffffffffu, c + lane < a.NB && a.band_start[c + lane] <= pos));
  int kb = lane < NH ? a.budget[(h + lane) * a.NB + band] : 0;
  for (int off = 4; off > 0; off >>= 1) kb = max(kb, __shfl_xor_sync(0xffffffffu, kb, off));
  kb = min(__shfl_sync(0xffffffffu, kb, 0), n);
  const int nc = max(newest - 1, 0);   // candidate pages 1 .. newest - 1
  const int extra = (kb + P - 1) / P;  // besides the sink and the newest page (pages.h)
  const bool write_flags = !a.group || a.flags_out != nullptr;
  auto set_flag = [&](int page, uint8_t f) {
    if (write_flags)
      for (int j = 0; j < NH; ++j) flags[int64_t(page) * G + j] = f;
  };
  auto set_reads = [&](int r) {
    if (a.q_reads != nullptr)
      for (int j = 0; j < NH; ++j) a.q_reads[bh + j] = r;
  };
  // group: the kept pages as a list in page order for step 3 (`list`, `count`).
  int* list = L.list + (int64_t(b) * a.Hkv + g) * L.NPcap;
  if (kb >= n || extra >= nc) {  // every page
    for (int i = tid; i < pages; i += nt) {
      set_flag(i, 1);
      if (a.group) list[i] = i;
    }
    if (tid == 0) {
      set_reads(n);
      if (a.group) L.count[int64_t(b) * a.Hkv + g] = pages;
    }
    return;
  }
  const float* bd = L.bounds + bh * L.NPc;
  const int J = (nc + 32 * kSelectWarps - 1) / (32 * kSelectWarps);
  const int base = warp * 32 * J + lane;  // candidate base + 32j
  uint32_t* kept_bits = keys + L.NPc;     // [warp * J + j]
  uint32_t lo = 0xffffffffu, hi = 0;
  for (int j0 = 0; j0 < J; j0 += 8) {  // eight loads in flight per thread
    float v[8];
#pragma unroll
    for (int u = 0; u < 8; ++u) {
      const int i = base + 32 * (j0 + u);
      v[u] = j0 + u < J && i < nc ? bd[i + 1] : 0.f;
    }
#pragma unroll
    for (int u = 0; u < 8; ++u) {
      const int i = base + 32 * (j0 + u);
      if (j0 + u < J && i < nc) {
        const uint32_t k = order_key(v[u]);
        keys[i] = k;
        lo = min(lo, k);
        hi = max(hi, k);
      }
    }
  }
  for (int off = 16; off > 0; off >>= 1) {
    lo = min(lo, __shfl_xor_sync(0xffffffffu, lo, off));
    hi = max(hi, __shfl_xor_sync(0xffffffffu, hi, off));
  }
  if (lane == 0) {
    s_lo[warp] = lo;
    s_hi[warp] = hi;
  }
  __syncthreads();
  for (int w = 0; w < kSelectWarps; ++w) {
    lo = min(lo, s_lo[w]);
    hi = max(hi, s_hi[w]);
  }
  const uint32_t diff = lo ^ hi;
  int top = diff == 0 ? -1 : 31 - __clz(diff);  // the highest bit where candidates differ
  uint32_t mask = top >= 31 ? 0u : 0xffffffffu << (top + 1);
  uint32_t prefix = lo & mask;
  int r = extra;  // rank of the threshold among the keys matching prefix (1 <= r < their number)
  while (top >= 0) {
    const int width = min(top + 1, kSelectBits), shift = top + 1 - width, nbins = 1 << width;
    for (int i = tid; i < nbins; i += nt) hist[i] = 0;
    __syncthreads();
#pragma unroll 4
    for (int j = 0; j < J; ++j) {
      const int i = base + 32 * j;
      const uint32_t k = i < nc ? keys[i] : 0u;
      if (i < nc && (k & mask) == prefix) atomicAdd(&hist[(k >> shift) & (nbins - 1)], 1u);
    }
    __syncthreads();
    // The bin of the r-th largest: thread t sums bins top_bin .. top_bin - per + 1 (from the top),
    // an inclusive scan over threads (lanes, then warps) finds the thread whose bins hold it.
    const int per = (nbins + nt - 1) / nt, top_bin = nbins - 1 - tid * per;
    int mine = 0;
    for (int u = 0; u < per; ++u)
      if (top_bin - u >= 0) mine += static_cast<int>(hist[top_bin - u]);
    int incl = mine;
    for (int off = 1; off < 32; off <<= 1) {
      const int y = __shfl_up_sync(0xffffffffu, incl, off);
      if (lane >= off) incl += y;
    }
    if (lane == 31) s_warp[warp] = incl;
    __syncthreads();
    for (int w = 0; w < warp; ++w) incl += s_warp[w];
    if (incl - mine < r && incl >= r) {  // exactly one thread
      int cum = incl - mine, bin = top_bin;
      while (cum + static_cast<int>(hist[bin]) < r) cum += static_cast<int>(hist[bin--]);
      s_r = r - cum;
      s_done = static_cast<int>(hist[bin]) == r - cum;
      s_prefix = prefix | (uint32_t(bin) << shift);
    }
    __syncthreads();
    r = s_r;
    prefix = s_prefix;
    mask |= uint32_t(nbins - 1) << shift;
    top = shift - 1;
    if (s_done) break;  // block-uniform (read after the barrier; rewritten two barriers on)
  }
  // Keys above the threshold, then the r largest pages among those equal to it: each warp counts
  // its equal keys, then walks its candidates from the largest page down.
  int weq = 0;
  for (int j = 0; j < J; ++j) {
    const int i = base + 32 * j;
    weq += __popc(__ballot_sync(0xffffffffu, i < nc && (keys[i] & mask) == prefix));
  }
  if (lane == 0) s_warp[warp] = weq;
  __syncthreads();
  int after = 0;  // threshold-equal keys at larger pages
  for (int w = warp + 1; w < kSelectWarps; ++w) after += s_warp[w];
  const unsigned above = ~((2u << lane) - 1u);  // lanes above this one (none for lane 31)
  int wkept = 0;
  for (int j = J - 1; j >= 0; --j) {
    const int i = base + 32 * j;
    const bool in = i < nc;
    const uint32_t key = in ? keys[i] & mask : 0u;
    const bool eq = in && key == prefix;
    const unsigned eqb = __ballot_sync(0xffffffffu, eq);
    const bool keep = in && (key > prefix || (eq && after + __popc(eqb & above) < r));
    after += __popc(eqb);
    const unsigned kept = __ballot_sync(0xffffffffu, keep);
    if (in) set_flag(i + 1, keep ? 1 : 0);
    if (lane == 0) kept_bits[warp * J + j] = kept;
    wkept += __popc(kept);
  }
  if (a.group) {  // the list: the sink, the kept candidates in page order, the newest page
    if (lane == 0) s_kept[warp] = wkept;
    __syncthreads();
    int at = 1, total = 0;
    for (int w = 0; w < kSelectWarps; ++w) {
      if (w < warp) at += s_kept[w];
      total += s_kept[w];
    }
    const unsigned below = (1u << lane) - 1u;
    for (int j = 0; j < J; ++j) {
      const unsigned kept = kept_bits[warp * J + j];
      if (kept >> lane & 1u) list[at + __popc(kept & below)] = base + 32 * j + 1;
      at += __popc(kept);
    }
    if (tid == 0) {
      list[0] = 0;
      list[1 + total] = newest;
      L.count[int64_t(b) * a.Hkv + g] = 2 + total;  // newest > 1: the rule keeps pages besides
    }
  }
  if (tid == 0) {
    set_flag(0, 1);
    if (newest > 0) set_flag(newest, 1);
    // the sink and newest pages, and `extra` full pages
    set_reads((newest == 0 ? n : P + (pos - newest * P + 1)) + extra * P);
  }
}

// Step 1: block (chunk of kBoundsPages full pages, KV head, batch). A page's summary rows are
// spread over LPK lanes of 16 bytes (as keys are in step 3); bounds for the G query heads, or with
// `group` their largest, in the slot of the group's first head.
// Each warp loads kBoundsRounds rounds of KPL pages before it computes (their loads in flight
// together) and a block takes kBoundsPages pages, so that the queries' set-up is amortised.
// rule.h's score, sum over d of q_d·c_d + s·|q_d|·r_d (c, r the page's centre and half-range), is
// sum over d of A_d·max_d + B_d·min_d with A = (q + s|q|) / 2 and B = (q - s|q|) / 2, both set
// up once per query: two FMA per channel and head. At s = 1, A = max(q, 0) and B = min(q, 0)
// exactly, so this is Quest's bound, max(q_d·min_d, q_d·max_d) summed.
constexpr int kBoundsRounds = 4;
constexpr int kBoundsPages = 64;

// The GMAX heads' partial sums x[] of this lane (its V channels) -> x[0], the full sum over the
// page's LPK lanes of head (lane % LPK) / (LPK / GMAX) (LPK >= GMAX): at each butterfly step a
// lane keeps half of its heads and sends the other half to its partner, so the heads' sums take
// log2(LPK) shuffles in all instead of GMAX times that.
template <int GMAX>
__device__ __forceinline__ void fold_heads(float (&x)[GMAX], int lane, int LPK) {
  int off = LPK >> 1;
#pragma unroll
  for (int n = GMAX; n > 1; n >>= 1, off >>= 1) {
    const bool upper = lane & off;
#pragma unroll
    for (int k = 0; k < n / 2; ++k) {
      const float send = upper ? x[k] : x[k + n / 2];
      const float keep = upper ? x[k + n / 2] : x[k];
      x[k] = keep + __shfl_xor_sync(0xffffffffu, send, off);
    }
  }
  for (; off > 0; off >>= 1) x[0] += __shfl_xor_sync(0xffffffffu, x[0], off);
}

template <typename T, int GMAX>
__global__ void __launch_bounds__(128) bounds_kernel(PagedDecodeArgs a, Layout L) {
  constexpr int V = kPer16<T>;
  const int G = a.H / a.Hkv, g = blockIdx.y, b = blockIdx.z, D = a.D;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int LPK = D / V, KPL = 32 / LPK, kg = lane / LPK, sub = lane % LPK, c0 = sub * V;
  float A[GMAX][V], Bc[GMAX][V];  // heads gi >= G: 0 (their scores are not used)
  const T* qbase = static_cast<const T*>(a.q) + b * a.q_sb;
#pragma unroll
  for (int gi = 0; gi < GMAX; ++gi) {
    float q[V];
    if (gi < G) {
      load16(qbase + int64_t(g * G + gi) * a.q_sh + c0, q);
    } else {
#pragma unroll
      for (int v = 0; v < V; ++v) q[v] = 0;
    }
#pragma unroll
    for (int v = 0; v < V; ++v) {
      const float m = a.spread * fabsf(q[v]);
      A[gi][v] = 0.5f * (q[v] + m);
      Bc[gi][v] = 0.5f * (q[v] - m);
    }
  }
  const int first = blockIdx.x * kBoundsPages;
  const int last = min(first + kBoundsPages, keys_in_cache(a) / a.page);  // full pages
  if (first >= last) return;
  const int64_t rows = (int64_t(b) * a.Hkv + g) * L.NPc * D;
  const T* mnb = static_cast<const T*>(a.kmin) + rows;
  const T* mxb = static_cast<const T*>(a.kmax) + rows;
  float* out = L.bounds + (int64_t(b) * a.H + g * G) * L.NPc;  // head g·G + gi at gi·NPc
  const bool fold = LPK >= GMAX, group = a.group;
  const int per = fold ? LPK / GMAX : 1;  // lanes that hold one head's sum after fold_heads
  const int mine = fold ? sub / per : 0;  // the head whose sum this lane holds
  constexpr int R = kBoundsRounds;
  for (int m0 = first + warp * KPL; m0 < last; m0 += 4 * KPL * R) {
    uint4 rmn[R], rmx[R];  // the rounds' raw rows, loaded before any is used
#pragma unroll
    for (int rr = 0; rr < R; ++rr) {
      const int m = m0 + rr * 4 * KPL + kg;
      if (m < last) {
        rmn[rr] = *reinterpret_cast<const uint4*>(mnb + int64_t(m) * D + c0);
        rmx[rr] = *reinterpret_cast<const uint4*>(mxb + int64_t(m) * D + c0);
      } else {
        rmn[rr] = rmx[rr] = make_uint4(0, 0, 0, 0);
      }
    }
#pragma unroll
    for (int rr = 0; rr < R; ++rr) {
      const int m = m0 + rr * 4 * KPL + kg;
      const bool ok = m < last;
      float mn[V], mx[V];
      unpack16(rmn[rr], mn, mnb);
      unpack16(rmx[rr], mx, mxb);
      float x[GMAX];
#pragma unroll
      for (int gi = 0; gi < GMAX; ++gi) {
        float t = 0;
#pragma unroll
        for (int v = 0; v < V; ++v) t = fmaf(A[gi][v], mx[v], fmaf(Bc[gi][v], mn[v], t));
        x[gi] = t;
      }
      if (fold) {  // x[0]: head `mine`, on the `per` lanes sub = mine·per ..
        fold_heads<GMAX>(x, lane, LPK);
        if (group) {
          float best = mine < G ? x[0] : -INFINITY;
          for (int o = per; o < LPK; o <<= 1)
            best = fmaxf(best, __shfl_xor_sync(0xffffffffu, best, o));
          if (ok && sub == 0) out[m] = best * a.scale;
        } else if (ok && sub % per == 0 && mine < G) {
          out[int64_t(mine) * L.NPc + m] = x[0] * a.scale;
        }
      } else {  // fewer lanes than heads: each head's sum over the page's lanes
        float best = -INFINITY;
#pragma unroll
        for (int gi = 0; gi < GMAX; ++gi) {
          for (int o = LPK >> 1; o > 0; o >>= 1) x[gi] += __shfl_xor_sync(0xffffffffu, x[gi], o);
          if (gi >= G) continue;
          if (group) {
            best = fmaxf(best, x[gi] * a.scale);
          } else if (ok && sub == 0) {
            out[int64_t(gi) * L.NPc + m] = x[gi] * a.scale;
          }
        }
        if (group && ok && sub == 0) out[m] = best;
      }
    }
  }
}

// Step 3: block (split, KV head, batch): the split's range of pages, read once for the group's
// query heads (a head skips pages it did not keep). A key is spread over LPK = D / V lanes of 16
// bytes (V elements), so a warp moves KPL = 32 / LPK keys per 16-byte copy and NK = U·KPL keys
// per step. Warp w takes the split's pages w, w + W, ...: it reads the kept-page flags of 32 of
// its pages at once (a lane each, one ballot) and walks the kept ones. Each step's keys and
// values go global -> shared by cp.async, kAttendStages - 1 steps ahead of their use, so a warp
// keeps several steps of bytes in flight without holding them in registers; each lane reads
// back only what it copied. Each key group keeps its own online softmax per head, merged at the
// end (lanes, then warps, in a fixed order).
// With DM > 0 (bf16 / fp16, D = DM): tensor cores. A step is 16 keys; the group's heads are the
// rows of one m16n8k16 tile (rows G .. 15 zero), so a page's scores are DM / 16 × 2 MMA from
// ldmatrix fragments of the keys, and P·V (P rounded to T, as flash attention does) DM / 8 MMA,
// instead of a dot product, three shuffles and a P·V row per head and key. A head that did not
// keep the page gets -inf scores there (nothing of it reaches the output). The keys and values
// sit in shared memory row by row, padded by 16 bytes (conflict-free ldmatrix); lanes read what
// other lanes copied, after the wait and a warp barrier.
template <int DM, typename T, int U>
__host__ __device__ constexpr int attend_stage_bytes() {
  return DM > 0 ? 2 * 16 * (DM + 8) * static_cast<int>(sizeof(T)) : 2 * U * 32 * 16;
}
template <int GMAX, int U, int DM, typename T>
constexpr int attend_smem_bytes(int D) {
  return kAttendWarps * kAttendStages * attend_stage_bytes<DM, T, U>() +
         kAttendWarps * GMAX * D * 4 + 2 * kAttendWarps * GMAX * 4;
}

// Up to four query heads per KV head: at most 128 registers, so that four blocks (16 warps) fit
// on a multiprocessor (151 unbounded: three); the compiler spills 8 bytes. Eight heads: unbounded
// (a cap spills hundreds of bytes). Tensor cores at D = 128 (64 accumulators a lane): two blocks
// (a cap of 128 spills 92 bytes).
__host__ __device__ constexpr int attend_min_blocks(int gmax, int dm) {
  return dm == 128 ? 2 : gmax <= 4 ? 4 : 1;
}
template <typename T, int GMAX, int U, int DM>
__global__ void __launch_bounds__(32 * kAttendWarps, attend_min_blocks(GMAX, DM))
    attend_kernel(PagedDecodeArgs a, Layout L, bool dense) {
  constexpr int V = kPer16<T>, W = kAttendWarps, ST = kAttendStages;
  constexpr bool kMma = DM > 0;
  constexpr int kStage = attend_stage_bytes<DM, T, U>(), LDS = DM + 8;  // LDS: a row, elements
  extern __shared__ __align__(16) unsigned char smem[];
  const int split = blockIdx.x, g = blockIdx.y, b = blockIdx.z;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int G = a.H / a.Hkv, P = a.page, D = kMma ? DM : a.D, S = keys_in_cache(a);
  const int LPK = D / V, KPL = 32 / LPK, NK = kMma ? 16 : U * KPL, kg = lane / LPK,
            c0 = (lane % LPK) * V;
  // Shared memory: per warp ST stages (of [K: U][32] and [V: U][32] 16-byte pieces, lane-major;
  // tensor cores: K [16][LDS] and V [16][LDS]), then the block merge's s_acc [W][GMAX][D], s_m
  // [W][GMAX], s_l [W][GMAX].
  unsigned char* ring_bytes = smem + warp * ST * kStage;
  uint4* ring = reinterpret_cast<uint4*>(ring_bytes);
  float* s_acc = reinterpret_cast<float*>(smem + W * ST * kStage);
  float* s_m = s_acc + W * GMAX * D;
  float* s_l = s_m + W * GMAX;
  const int pages = (S + P - 1) / P;
  const int per = (pages + gridDim.x - 1) / gridDim.x;
  const int p0 = split * per, p1 = min(p0 + per, pages);
  float q[GMAX][V], acc[GMAX][V], m[GMAX], l[GMAX];
  const T* qbase = static_cast<const T*>(a.q) + b * a.q_sb;
  // Tensor cores: the lane's row g4 (head g4 of the group, when g4 < G) and column pair q4; the
  // query fragments (A of m16n8k16, rows g4 and g4 + 8, the latter zero), the output fragments
  // (o[nd]: columns nd·8 + 2·q4 + {0, 1}), the row's running maximum and the lane's share of its
  // sum.
  const int g4 = lane >> 2, q4 = lane & 3;
  uint32_t qa[kMma ? DM / 16 : 1][4];
  float o[kMma ? DM / 8 : 1][4];
  float mr = -INFINITY, lr = 0;
  if constexpr (kMma) {
    const T* qr = g4 < G ? qbase + int64_t(g * G + g4) * a.q_sh : nullptr;
#pragma unroll
    for (int ks = 0; ks < DM / 16; ++ks) {
      const int c = 16 * ks + 2 * q4;
      qa[ks][0] = qr ? *reinterpret_cast<const uint32_t*>(qr + c) : 0u;
      qa[ks][1] = 0u;
      qa[ks][2] = qr ? *reinterpret_cast<const uint32_t*>(qr + c + 8) : 0u;
      qa[ks][3] = 0u;
    }
#pragma unroll
    for (int nd = 0; nd < DM / 8; ++nd) o[nd][0] = o[nd][1] = o[nd][2] = o[nd][3] = 0;
  } else {
#pragma unroll
    for (int gi = 0; gi < GMAX; ++gi) {
      m[gi] = -INFINITY, l[gi] = 0;
#pragma unroll
      for (int v = 0; v < V; ++v) acc[gi][v] = 0, q[gi][v] = 0;
      if (gi < G) {
        load16(qbase + int64_t(g * G + gi) * a.q_sh + c0, q[gi]);
#pragma unroll
        for (int v = 0; v < V; ++v) q[gi][v] *= a.scale;
      }
    }
  }
  const int64_t base = (int64_t(b) * a.Hkv + g) * a.capacity * D;
  const T* kp = static_cast<const T*>(a.k) + base;
  const T* vp = static_cast<const T*>(a.v) + base;
  const uint8_t* fl = L.flags + (int64_t(b) * a.Hkv + g) * L.NPcap * G;
  // With `group` (sparse) the group's kept pages come as a list (step 2): the block takes its
  // share of the entries, warp w the entries w, w + W, ...
  const bool listed = !dense && a.group;
  const int* lst = L.list + (int64_t(b) * a.Hkv + g) * L.NPcap;
  int e_next = 0, e_end = 0;
  if (listed) {
    const int cnt = L.count[int64_t(b) * a.Hkv + g];
    const int share = (cnt + gridDim.x - 1) / gridDim.x;
    e_next = split * share + warp;
    e_end = min(split * share + share, cnt);
  }
  // The warp's steps in order (warp-uniform state): the current page's next key, its end and
  // heads; the window of 32 of the warp's pages (slot i: page p0 + warp + W·i) whose kept ones
  // are still to start.
  int pj = 0, pend = 0, wbase = -32;
  unsigned pheads = 0, kept = 0, lane_heads = 0;
  bool more = p0 + warp < p1;
  auto next_step = [&](int& sj, int& se, unsigned& sh) {
    for (;;) {
      if (pj < pend) {
        sj = pj, se = min(pj + NK, pend), sh = pheads;
        pj += NK;
        return;
      }
      if (listed) {
        if (e_next >= e_end) {
          sj = se = 0, sh = 0;
          return;
        }
        const int pg = lst[e_next];
        e_next += W;
        pheads = (1u << G) - 1;
        pj = pg * P, pend = min(pg * P + P, S);
        continue;
      }
      if (kept == 0) {
        if (!more) {
          sj = se = 0, sh = 0;
          return;
        }
        wbase += 32;
        const int pg = p0 + warp + W * (wbase + lane);
        unsigned h = 0;
        if (pg < p1) {
          if (dense) {
            h = (1u << G) - 1;
          } else {
            for (int gi = 0; gi < G; ++gi) h |= unsigned(fl[int64_t(pg) * G + gi] != 0) << gi;
          }
        }
        lane_heads = h;
        kept = __ballot_sync(0xffffffffu, h != 0);
        more = p0 + warp + W * (wbase + 32) < p1;
        continue;
      }
      const int bit = __ffs(kept) - 1;
      kept &= kept - 1;
      const int pg = p0 + warp + W * (wbase + bit);
      pheads = __shfl_sync(0xffffffffu, lane_heads, bit);
      pj = pg * P, pend = min(pg * P + P, S);
    }
  };
  auto issue = [&](int stage, int sj, int se) {
    __syncwarp();  // the warp's reads of this stage (a step ago) come before its overwrite
    if constexpr (kMma) {
      T* sk = reinterpret_cast<T*>(ring_bytes + stage * kStage);
      T* sv = sk + 16 * LDS;
      if (sj < se) {
#pragma unroll
        for (int pc = lane; pc < 16 * (DM / 8); pc += 32) {  // 16-byte pieces: key, chunk
          const int j = pc / (DM / 8), c = (pc % (DM / 8)) * 8;
          const bool ok = sj + j < se;
          const int64_t off = ok ? int64_t(sj + j) * DM + c : 0;
          cp_async16(sk + j * LDS + c, kp + off, ok);
          cp_async16(sv + j * LDS + c, vp + off, ok);
        }
      }
      cp_async_commit();
      return;
    }
    uint4* st = ring + stage * 2 * U * 32;
    if (sj < se) {
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int jj = sj + u * KPL + kg;
        const bool ok = jj < se;
        const int64_t off = ok ? int64_t(jj) * D + c0 : 0;
        cp_async16(st + u * 32 + lane, kp + off, ok);
        cp_async16(st + (U + u) * 32 + lane, vp + off, ok);
      }
    }
    cp_async_commit();
  };
  int dj[ST], de[ST];  // the steps in flight, oldest first: first key, end, heads
  unsigned dh[ST];
#pragma unroll
  for (int s = 0; s < ST - 1; ++s) {
    next_step(dj[s], de[s], dh[s]);
    issue(s, dj[s], de[s]);
  }
  for (int it = 0; dj[0] < de[0]; ++it) {
    next_step(dj[ST - 1], de[ST - 1], dh[ST - 1]);
    issue((it + ST - 1) % ST, dj[ST - 1], de[ST - 1]);
    cp_async_wait<ST - 1>();  // this step's copies (the oldest group) have landed
    const int cur_j = dj[0], cur_end = de[0];
    const unsigned cur_heads = dh[0];
    if constexpr (kMma) {
      __syncwarp();  // every lane's copies of the step are visible to the warp
      const T* sk = reinterpret_cast<const T*>(ring_bytes + (it % ST) * kStage);
      const T* sv = sk + 16 * LDS;
      const int mi = lane >> 3, rr = lane & 7;  // ldmatrix: this lane's matrix and row
      float c[2][4] = {{0, 0, 0, 0}, {0, 0, 0, 0}};
#pragma unroll
      for (int ks = 0; ks < DM / 16; ++ks) {
        uint32_t b0, b1, b2, b3;
        ldsm_x4(sk + ((mi >> 1) * 8 + rr) * LDS + 16 * ks + 8 * (mi & 1), b0, b1, b2, b3);
        mma16816<T>(c[0], qa[ks], b0, b1);
        mma16816<T>(c[1], qa[ks], b2, b3);
      }
      // Row g4's scores of keys nt·8 + 2·q4 + e; -inf where the key is past the step or the
      // row's head did not keep the page.
      const bool on = g4 < G && ((cur_heads >> g4) & 1u);
      float mx = -INFINITY;
#pragma unroll
      for (int nt = 0; nt < 2; ++nt)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const bool ok = on && cur_j + nt * 8 + 2 * q4 + e < cur_end;
          c[nt][e] = ok ? c[nt][e] * a.scale : -INFINITY;
          mx = fmaxf(mx, c[nt][e]);
        }
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      if (mx > mr) {                         // a new maximum (quad-uniform): rescale
        const float corr = __expf(mr - mx);  // 0 while the row had no key
        lr *= corr;
#pragma unroll
        for (int nd = 0; nd < DM / 8; ++nd) o[nd][0] *= corr, o[nd][1] *= corr;
        mr = mx;
      }
      float pw[2][2];
#pragma unroll
      for (int nt = 0; nt < 2; ++nt)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          pw[nt][e] = mr == -INFINITY ? 0.f : __expf(c[nt][e] - mr);
          lr += pw[nt][e];
        }
      const uint32_t pa[4] = {pack2<T>(pw[0][0], pw[0][1]), 0u, pack2<T>(pw[1][0], pw[1][1]), 0u};
#pragma unroll
      for (int ndp = 0; ndp < DM / 16; ++ndp) {
        uint32_t b0, b1, b2, b3;
        ldsm_x4_t(sv + ((mi & 1) * 8 + rr) * LDS + 16 * ndp + (mi >> 1) * 8, b0, b1, b2, b3);
        mma16816<T>(o[2 * ndp], pa, b0, b1);
        mma16816<T>(o[2 * ndp + 1], pa, b2, b3);
      }
#pragma unroll
      for (int i = 0; i < ST - 1; ++i) dj[i] = dj[i + 1], de[i] = de[i + 1], dh[i] = dh[i + 1];
      continue;
    }
    const uint4* st = ring + (it % ST) * 2 * U * 32;
    float s[GMAX][U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      float kt[V];
      unpack16(st[u * 32 + lane], kt, kp);
      const bool ok = cur_j + u * KPL + kg < cur_end;
#pragma unroll
      for (int gi = 0; gi < GMAX; ++gi) {
        // A head that did not keep the page (warp-uniform) skips it: on a sparse step most of
        // a page's heads did not keep it (10% per head is ~36% as the union of four).
        if (gi >= G || !((cur_heads >> gi) & 1u)) continue;
        float x = 0;
#pragma unroll
        for (int v = 0; v < V; ++v) x += q[gi][v] * kt[v];
        for (int off = LPK >> 1; off > 0; off >>= 1) x += __shfl_xor_sync(0xffffffffu, x, off);
        s[gi][u] = ok ? x : -INFINITY;
      }
    }
#pragma unroll
    for (int gi = 0; gi < GMAX; ++gi) {
      if (gi >= G || !((cur_heads >> gi) & 1u)) continue;
      float tm = m[gi];
#pragma unroll
      for (int u = 0; u < U; ++u) tm = fmaxf(tm, s[gi][u]);
      if (tm == -INFINITY) {
#pragma unroll
        for (int u = 0; u < U; ++u) s[gi][u] = 0;
        continue;
      }
      if (tm != m[gi]) {  // a new maximum: rescale (else the factor would be exactly 1)
        const float corr = __expf(m[gi] - tm);
        l[gi] *= corr;
#pragma unroll
        for (int v = 0; v < V; ++v) acc[gi][v] *= corr;
        m[gi] = tm;
      }
#pragma unroll
      for (int u = 0; u < U; ++u) {
        s[gi][u] = __expf(s[gi][u] - tm);  // now the probability weight
        l[gi] += s[gi][u];
      }
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      float vt[V];
      unpack16(st[(U + u) * 32 + lane], vt, vp);
#pragma unroll
      for (int gi = 0; gi < GMAX; ++gi) {
        if (gi >= G || !((cur_heads >> gi) & 1u)) continue;
#pragma unroll
        for (int v = 0; v < V; ++v) acc[gi][v] += s[gi][u] * vt[v];
      }
    }
#pragma unroll
    for (int i = 0; i < ST - 1; ++i) dj[i] = dj[i + 1], de[i] = de[i + 1], dh[i] = dh[i + 1];
  }
  cp_async_wait<0>();
  if constexpr (kMma) {  // the row's sum over its quad; row g4 is head g4 of the group
    lr += __shfl_xor_sync(0xffffffffu, lr, 1);
    lr += __shfl_xor_sync(0xffffffffu, lr, 2);
    if (g4 < G) {
      if (q4 == 0) s_m[warp * GMAX + g4] = mr, s_l[warp * GMAX + g4] = lr;
#pragma unroll
      for (int nd = 0; nd < DM / 8; ++nd) {
        float* d = s_acc + (warp * GMAX + g4) * D + nd * 8 + 2 * q4;
        d[0] = o[nd][0], d[1] = o[nd][1];
      }
    }
  }
  if constexpr (!kMma) {  // merge the warp's key groups (lanes LPK apart); then the warps
#pragma unroll
    for (int gi = 0; gi < GMAX; ++gi) {
      if (gi >= G) continue;
      for (int off = LPK; off < 32; off <<= 1) {
        const float mo = __shfl_xor_sync(0xffffffffu, m[gi], off);
        const float lo = __shfl_xor_sync(0xffffffffu, l[gi], off);
        const float mm = fmaxf(m[gi], mo);
        const float a0 = m[gi] == -INFINITY ? 0.f : __expf(m[gi] - mm);
        const float a1 = mo == -INFINITY ? 0.f : __expf(mo - mm);
        l[gi] = l[gi] * a0 + lo * a1;
#pragma unroll
        for (int v = 0; v < V; ++v) {
          const float ao = __shfl_xor_sync(0xffffffffu, acc[gi][v], off);
          acc[gi][v] = acc[gi][v] * a0 + ao * a1;
        }
        m[gi] = mm;
      }
      if (lane == 0) s_m[warp * GMAX + gi] = m[gi], s_l[warp * GMAX + gi] = l[gi];
      if (kg == 0) {
#pragma unroll
        for (int v = 0; v < V; ++v) s_acc[(warp * GMAX + gi) * D + c0 + v] = acc[gi][v];
      }
    }
  }
  __syncthreads();
  for (int i = threadIdx.x; i < G * D; i += blockDim.x) {
    const int gi = i / D, d = i % D;
    float M = -INFINITY;
    for (int w = 0; w < W; ++w) M = fmaxf(M, s_m[w * GMAX + gi]);
    float x = 0, sum = 0;
    for (int w = 0; w < W; ++w)
      if (s_m[w * GMAX + gi] > -INFINITY) {
        const float e = __expf(s_m[w * GMAX + gi] - M);
        x += s_acc[(w * GMAX + gi) * D + d] * e;
        sum += s_l[w * GMAX + gi] * e;
      }
    float* pp = L.part + ((int64_t(b) * a.H + g * G + gi) * gridDim.x + split) * (D + 2);
    pp[2 + d] = x;
    if (d == 0) pp[0] = M, pp[1] = sum;
  }
}

// Appends one position (PagedAppendArgs): block (KV head, batch), a thread per channel; when the
// position completes a page, each thread reduces its channel over the page's rows (their stored
// values: the summary is exact).
template <typename T>
__global__ void append_kernel(PagedAppendArgs a) {
  const int g = blockIdx.x, b = blockIdx.y, D = a.D, P = a.page;
  const int64_t pos = a.position != nullptr ? *a.position : a.pos;
  if (pos < 0 || pos >= a.capacity) return;  // the host checks the capacity
  const T* k = static_cast<const T*>(a.k) + b * a.k_sb + g * a.k_sh;
  const T* v = static_cast<const T*>(a.v) + b * a.v_sb + g * a.v_sh;
  const int64_t row = (int64_t(b) * a.Hkv + g) * a.capacity;
  T* kc = static_cast<T*>(a.kc) + row * D;
  T* vc = static_cast<T*>(a.vc) + row * D;
  const bool full = (pos + 1) % P == 0;
  const int64_t first = pos + 1 - P;
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    const T kd = k[d];
    kc[pos * D + d] = kd;
    vc[pos * D + d] = v[d];
    if (!full) continue;
    T mn = kd, mx = kd;
    for (int64_t r = first; r < pos; ++r) {
      const T x = kc[r * D + d];
      if (to_f(x) < to_f(mn)) mn = x;
      if (to_f(x) > to_f(mx)) mx = x;
    }
    const int64_t pg = ((int64_t(b) * a.Hkv + g) * (a.capacity / P) + pos / P) * D + d;
    static_cast<T*>(a.kmin)[pg] = mn;
    static_cast<T*>(a.kmax)[pg] = mx;
  }
}

// Step 4: block (query head, batch). The splits' largest maximum M first (each thread a strided
// share of the splits, then a block-wide max: order-free, so exact), then thread (r, d) sums
// channel d and the weights exp(m_s - M) over the splits s = r, r + R, ... in increasing order
// (R = the threads per channel), and thread d adds the R partial sums in order r = 0 .. R - 1: a
// fixed order throughout, so the output is deterministic. Every thread's loads are independent,
// so a block waits for about three round trips to L2 instead of one per split. (Folding this into
// step 3's last block per group, as a per-group completion count, measured slower on the H200:
// docs/decoding.md.)
constexpr int kCombineThreads = 256;
template <typename T>
__global__ void __launch_bounds__(kCombineThreads) combine_kernel(PagedDecodeArgs a, Layout L) {
  __shared__ float s_max[kCombineThreads / 32];
  __shared__ float s_x[kCombineThreads], s_sum[kCombineThreads];
  const int h = blockIdx.x, b = blockIdx.y, D = a.D, ns = a.splits, tid = threadIdx.x;
  const int64_t bh = int64_t(b) * a.H + h;
  const float* pp = L.part + bh * ns * (D + 2);
  float M = -INFINITY;
#pragma unroll 4
  for (int s = tid; s < ns; s += kCombineThreads) M = fmaxf(M, pp[int64_t(s) * (D + 2)]);
  for (int off = 16; off > 0; off >>= 1) M = fmaxf(M, __shfl_xor_sync(0xffffffffu, M, off));
  if ((tid & 31) == 0) s_max[tid >> 5] = M;
  __syncthreads();
  M = s_max[0];
  for (int w = 1; w < kCombineThreads / 32; ++w) M = fmaxf(M, s_max[w]);
  const int R = kCombineThreads / D;  // D <= 256 (paged_decode_supports)
  const int r = tid / D, d = tid % D;
  if (r < R) {
    float x = 0, sum = 0;
#pragma unroll 4
    for (int s = r; s < ns; s += R) {
      const float* ps = pp + int64_t(s) * (D + 2);
      const float ms = ps[0];
      const float e = ms > -INFINITY ? __expf(ms - M) : 0.f;  // 0 for splits that read nothing
      sum += e * ps[1];
      x += e * ps[2 + d];
    }
    s_x[tid] = x;
    s_sum[tid] = sum;
  }
  __syncthreads();
  if (tid < D) {
    float x = 0, sum = 0;
    for (int rr = 0; rr < R; ++rr) {
      x += s_x[rr * D + tid];
      sum += s_sum[rr * D + tid];
    }
    store(x / sum, static_cast<T*>(a.out) + bh * D + tid);
  }
}

// Keys per lane and step: U·GMAX scores in registers per lane.
template <int GMAX>
constexpr int kAttendU = GMAX <= 4 ? 4 : 2;

// The attend kernel a call gets: tensor cores for bf16 / fp16 at D = 64 or 128, the per-lane
// dot products otherwise. f(kernel, dynamic shared bytes); the one place that decides, so the
// launch and the split count's occupancy query see the same kernel.
template <typename T, int GMAX, typename F>
auto with_attend_kernel(int D, F&& f) {
  constexpr int U = kAttendU<GMAX>;
  if constexpr (!std::is_same_v<T, float>) {
    if (D == 64) return f(attend_kernel<T, GMAX, U, 64>, attend_smem_bytes<GMAX, U, 64, T>(D));
    if (D == 128) return f(attend_kernel<T, GMAX, U, 128>, attend_smem_bytes<GMAX, U, 128, T>(D));
  }
  return f(attend_kernel<T, GMAX, U, 0>, attend_smem_bytes<GMAX, U, 0, T>(D));
}

template <typename T, int GMAX>
cudaError_t launch_attend(const PagedDecodeArgs& a, const Layout& L, bool dense, cudaStream_t st) {
  return with_attend_kernel<T, GMAX>(a.D, [&](auto kernel, int smem) {
    if (smem > 48 * 1024) {
      static int raised = 0;  // per kernel (lambda instance): raise it once to the largest asked
      if (smem > raised) {
        if (cudaError_t e =
                cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem))
          return e;
        raised = smem;
      }
    }
    kernel<<<dim3(a.splits, a.Hkv, a.B), 32 * kAttendWarps, smem, st>>>(a, L, dense);
    return cudaGetLastError();
  });
}

// Resident attend blocks per multiprocessor for this call's kernel (occupancy calculator).
template <typename T, int GMAX>
int attend_occupancy(int D) {
  return with_attend_kernel<T, GMAX>(D, [&](auto kernel, int smem) {
    if (smem > 48 * 1024)
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    int n = 0;
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, kernel, 32 * kAttendWarps, smem) !=
        cudaSuccess)
      n = 1;
    return n > 0 ? n : 1;
  });
}

template <typename T>
int attend_occupancy_of(int D, int G) {
  if (G <= 1) return attend_occupancy<T, 1>(D);
  if (G <= 2) return attend_occupancy<T, 2>(D);
  if (G <= 4) return attend_occupancy<T, 4>(D);
  return attend_occupancy<T, 8>(D);
}

template <typename T>
const char* run(const PagedDecodeArgs& a, cudaStream_t st) {
  const Layout L = layout_of(a);
  const bool dense = a.budget == nullptr;
  const int G = a.H / a.Hkv;
  if (!dense) {
    const int full = a.position != nullptr ? L.NPc : L.NPf;  // blocks past the length return
    if (full > 0) {
      const dim3 grid((full + kBoundsPages - 1) / kBoundsPages, a.Hkv, a.B);
      if (G <= 1)
        bounds_kernel<T, 1><<<grid, 128, 0, st>>>(a, L);
      else if (G <= 2)
        bounds_kernel<T, 2><<<grid, 128, 0, st>>>(a, L);
      else if (G <= 4)
        bounds_kernel<T, 4><<<grid, 128, 0, st>>>(a, L);
      else
        bounds_kernel<T, 8><<<grid, 128, 0, st>>>(a, L);
      if (cudaError_t e = cudaGetLastError()) return cudaGetErrorString(e);
    }
    const size_t smem = select_smem_bytes(L.NPc);
    if (smem > 48 * 1024)
      cudaFuncSetAttribute(select_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                           static_cast<int>(smem));
    select_kernel<<<dim3(a.group ? a.Hkv : a.H, a.B), kSelectThreads, smem, st>>>(a, L);
    if (cudaError_t e = cudaGetLastError()) return cudaGetErrorString(e);
  }
  cudaError_t e;
  if (G <= 1)
    e = launch_attend<T, 1>(a, L, dense, st);
  else if (G <= 2)
    e = launch_attend<T, 2>(a, L, dense, st);
  else if (G <= 4)
    e = launch_attend<T, 4>(a, L, dense, st);
  else
    e = launch_attend<T, 8>(a, L, dense, st);
  if (e != cudaSuccess) return cudaGetErrorString(e);
  combine_kernel<T><<<dim3(a.H, a.B), kCombineThreads, 0, st>>>(a, L);
  if (cudaError_t e2 = cudaGetLastError()) return cudaGetErrorString(e2);
  return nullptr;
}

}  // namespace

bool paged_decode_supports(int D, int G, int element_bytes) {
  const int v = 16 / element_bytes, lpk = D / v;
  return D % v == 0 && lpk >= 1 && lpk <= 32 && (lpk & (lpk - 1)) == 0 && D <= 256 && G >= 1 &&
         G <= 8;
}

int decode_auto_splits(const PagedDecodeArgs& a, int64_t pages) {
  int dev = 0;
  cudaGetDevice(&dev);
  const int G = a.H / a.Hkv;
  static std::mutex mu;
  static std::map<std::tuple<int, int, int, int>, std::pair<int, int>> known;  // -> (occ, SMs)
  std::pair<int, int> oc;
  {
    std::lock_guard<std::mutex> lock(mu);
    const auto key = std::make_tuple(dev, static_cast<int>(a.type), G, a.D);
    auto it = known.find(key);
    if (it == known.end()) {
      int sms = 1;
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
      const int occ = with_elem_type(a.type, 1, [&](auto tag) {
        return attend_occupancy_of<typename decltype(tag)::type>(a.D, G);
      });
      it = known.emplace(key, std::make_pair(occ, sms)).first;
    }
    oc = it->second;
  }
  const int64_t units = int64_t(a.B) * a.Hkv;
  const int64_t want = std::max<int64_t>(1, int64_t(oc.first) * oc.second / units);
  return static_cast<int>(std::min<int64_t>(want, std::max<int64_t>(1, pages / kAttendWarps)));
}

const char* paged_append(const PagedAppendArgs& a, void* stream) {
  auto st = static_cast<cudaStream_t>(stream);
  const dim3 grid(a.Hkv, a.B);
  const int threads = a.D < 128 ? a.D : 128;
  with_elem_type(a.type, 0, [&](auto tag) {
    append_kernel<typename decltype(tag)::type><<<grid, threads, 0, st>>>(a);
    return 0;
  });
  if (cudaError_t e = cudaGetLastError()) return cudaGetErrorString(e);
  return nullptr;
}

int64_t decode_workspace_bytes(const PagedDecodeArgs& a) {
  const int64_t bh = int64_t(a.B) * a.H;
  const int64_t npc = a.capacity / a.page, npcap = (a.capacity + a.page - 1) / a.page;
  const int64_t bg = int64_t(a.B) * a.Hkv;
  return align256(bh * npc * 4) + align256(bh * npcap) + align256(bh * a.splits * (a.D + 2) * 4) +
         align256(bg * npcap * 4) + align256(bg * 4);
}

const char* paged_decode(const PagedDecodeArgs& a, void* stream) {
  auto st = static_cast<cudaStream_t>(stream);
  return with_elem_type(a.type, static_cast<const char*>("unknown element type"),
                        [&](auto tag) { return run<typename decltype(tag)::type>(a, st); });
}

}  // namespace csa::cuda
