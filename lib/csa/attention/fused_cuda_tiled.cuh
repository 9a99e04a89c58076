// Tiled tensor-core top-k attention for bf16 / fp16 / fp32, head_dim 64 and 128
// (fused_cuda_kernel.h: topk_attention dispatches here). One block of 4 warps takes 64 query rows
// of one KV head: the KV group's query heads packed with the positions (row r is position t0 + r /
// G of query head kvh * G + r % G), so K and V tiles are loaded once for the whole group. Every
// pass walks the causal key tiles (64 keys, 32 for float32; cp.async double-buffered in shared
// memory) and recomputes the scores S = Q K^T with mma.sync m16n8k16 (fp32 accumulation, Q in
// registers); no score leaves the chip. float32 inputs take mma.sync m16n8k8 on TF32 with each
// operand split into a TF32 high part and a TF32 remainder (3xTF32: hi*hi + hi*lo + lo*hi, about
// 2^-21 relative per product, the float32 explicit path's accuracy to within a few units; exact on
// small integers), for the scores and for P·V alike; K and V are split once a call, before the
// kernel (split_kv_kernel, into a scratch buffer: rows of high parts then remainders), so every
// pass copies split tiles as they are; Q is split in registers, P per warp.
//
// Selection: each row's k-th largest score in the order of (order_key(score), key index) — the
// CPU rule of select.h (higher score first, ties to the larger key index) — found by a radix
// select over that 48-bit composite key: a pass histograms the rows' candidates (per-warp
// shared-memory histograms, 16 rows x 256 bins) and each row keeps the bin holding its rank, a
// longer prefix of the composite key. The first pass takes the order key's top 12 bits (sign,
// exponent, 3 mantissa bits: an eighth of an octave) in two windows of 256 values, scores of
// magnitude 2^-16 to 2^16 of either sign, packed two counts a histogram word; a row whose rank
// lies outside them starts from no prefix. Every later pass takes the next 8 bits after each
// row's own prefix. A row is resolved when its bin's count equals the rank left (the whole bin
// is kept). When every unresolved row's bin (a prefix of the order key) holds at most kFoldCap
// keys, selection ends there: the attention pass keeps every key above the bin, gathers the
// bin's keys (order key, index) into shared memory, and after the pass they are ranked exactly
// and the rank's kept ones added (scores from their order keys, V rows from global memory, in
// rank order) — no further pass over QK^T. On real attention rows one pass usually suffices
// (results/gpu/first_pass). A resolved row's result is (tau, jcut): key j with order key u is
// kept iff u > tau or (u == tau and j >= jcut), exactly the budget's keys. Rows whose budget
// covers their causal keys skip it.
//
// Attention: a flash-attention pass over the same tiles with the online softmax over kept keys
// only (others get probability 0) and P·V on the tensor cores (P rounded to the input type; split
// hi + lo for float32). A warp skips a tile's QK^T where none of its rows can keep or gather a
// key there: the first pass leaves each row's largest order key per group of keys (128 groups of
// whole tiles, in the scratch buffer), and a row needs a group only if that maximum reaches the
// least key it keeps (tau) or gathers (its bin's floor); the softmax and P·V of a tile none of a
// warp's rows keeps a key of are skipped too.
// Reads are counted here: the budget per query row, and per KV head the union of the group's
// kept keys (a 64-bit kept mask per row and tile in shared memory, OR-ed over the group; a kept
// bin key of a folding row counts when no key above the bins and no other head's kept bin key
// of the same position already holds it).
// Histogram counts and reads are integers and every floating-point reduction runs in a fixed
// order, so the output is bit-identical run to run.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <type_traits>

#include "csa/attention/cuda_common.cuh"
#include "csa/attention/fused_cuda_kernel.h"

namespace csa::cuda::tiled {

// Profiling switches, compiled in (the results are wrong with 1, 2, 4 or 8 set, so no
// environment or option can turn them on in a normal build): 1 selection only, 2 attention only
// (no selection), 4 the first radix pass only, 8 histogram passes without their atomics; 16
// selection statistics (results unchanged, kernel slower), printed per launch. Build with
// CSA_CMAKE_ARGS="-DCMAKE_CUDA_FLAGS=-DCSA_TILED_PROFILE=N" to measure the parts
// (scripts/gpu/profile_tiled_parts.sh).
#ifndef CSA_TILED_PROFILE
#define CSA_TILED_PROFILE 0
#endif
constexpr int kTiledProfile = CSA_TILED_PROFILE;
enum TiledStat {
  kStatBlocks,
  kStatRowsSelecting,
  kStatFoldBlocks,
  kStatFirstMissed,
  kStatHistPasses,
  kStatRowsFolded,
  kStatFoldCandidates,
  kStatFoldMargin,
  kStatFoldOver,
  kStatRowsResolved,
  kStatResolvedMargin,
  kStatResolvedOver,
  kStatPass1,
  kStatPass2,
  kStatPass3Plus,
  kStatFoldPrefixBits,
  kStatWarpTiles,          // attention pass: (warp, tile) bodies within the warp's positions
  kStatWarpTilesEmpty,     // ... of which no row of the warp keeps a key (skipped)
  kStatWarpTilesUnscored,  // ... of those, skipped before QK^T by the first pass's group maxima
  kStatCount
};
// Profiling switch 16: selection statistics summed over each launch's blocks, printed by the
// launch's last block as "CSA_TILED_STATS <shape> <the TiledStat counts in order>". Rows are
// query rows whose budget is under their causal keys. Margin: the keys within e of a row's
// final bin (folding rows, outside it) or of its k-th score (resolved rows), e = 2^-9 scale |q|
// max_j |k_j| (float32; 0 for the 2-byte types) — the keys a selection on one-TF32-product
// scores would have to rank exactly; Over: rows where those and the bin's keys pass kFoldCap.
#if (CSA_TILED_PROFILE & 16) != 0
static __device__ unsigned long long g_tiled_stats[kStatCount];  // (one per translation unit)
static __device__ unsigned int g_tiled_ticket;
#endif

constexpr int kWarps = 4;
constexpr int kThreads = 32 * kWarps;
constexpr int kBM = 16 * kWarps;        // rows per block (16 per warp: one mma row tile)
constexpr int kBins = 256;              // 8-bit radix digits
constexpr int kHistStride = kBins + 1;  // padded: rows of one warp hit different banks
constexpr int kFoldCap = 64;            // candidates per row ranked after the attention pass
constexpr int kGroups = 128;            // key groups of a row's first-pass maxima (group_max)
constexpr int kKeyBits = 48;            // the composite key: order key (32), key index (16)
constexpr int kFirstBits = 12;          // the first pass's prefix (hist_pass<kFirstPass>)
// The first pass's windows of 256 values of the order key's top 12 bits (sign, exponent, 3
// mantissa bits): scores of magnitude 2^-16 to 2^16, positive and negative.
constexpr uint32_t kPosBase = 0x800u + 8u * (127u - 16u);         // 2^-16
constexpr uint32_t kNegBase = 0x7ffu - 8u * (127u - 16u) - 255u;  // just below -2^16
constexpr float kLog2e = 1.4426950408889634f;

// Per-row selection state in shared memory (row r of the block).
struct RowState {
  uint32_t tau[kBM];  // kept: u > tau || (u == tau && j >= jcut)
  uint32_t jcut[kBM];
  uint32_t upre[kBM];  // radix prefix of the rank's order key and key index so far
  uint32_t jpre[kBM];
  int kk[kBM];                      // rank still wanted inside the prefix (1-based)
  int cnt[kBM];                     // keys inside the prefix; then the fold's slot counter
  int active[kBM];                  // selection unresolved
  int pos[kBM];                     // position of the row's query (-1: padding)
  unsigned long long kept[2][kBM];  // attention pass: the row's kept keys of a tile (KV union),
                                    // by the tile's parity
  int snap[kBM];                    // attention pass: the row's candidates marked for the union
  int tcnt[2][kBM];                 // ... float32: its candidate count after a tile, by parity
  int pb[kBM];                      // bits of the composite key its prefix holds (0 ... 48)
  int wmax[kWarps];
};

template <typename T>
constexpr bool kF32 = std::is_same_v<T, float>;

// Keys per tile: 64 for the 2-byte types; for float32, whose stages hold each tile split into its
// TF32 high parts and remainders (two arrays), 32 at head dim 64 (a stage takes the same bytes)
// and 16 at head dim 128, so that two blocks fit a multiprocessor's shared memory (32-key tiles
// took 176 KB a block: one block, 4 warps).
template <typename T, int D>
constexpr int kBN = kF32<T> ? (D >= 128 ? 16 : 32) : 64;
template <typename T, int D>
constexpr int kNB = kBN<T, D> / 8;  // 8-key column blocks of a tile

template <typename T, int D>
struct Layout {
  // Shared row stride in elements, 8 past D: for the 2-byte types a 16-byte pad (ldmatrix hits 32
  // banks); for float32 a 32-byte one, so a row is 8 banks on from the one before and the K
  // fragment loads (8-byte, rows g = 0..7) of 16 lanes hit 32 banks.
  static constexpr int kLds = D + 8;
  static constexpr int kStage = kBN<T, D> * kLds;  // elements of one K (or V) tile
  // One stage: the tile; for float32 its TF32 high parts, then (kStage on) its remainders.
  static constexpr int kStageElems = kStage * (kF32<T> ? 2 : 1);
  static constexpr int kStageBytes = static_cast<int>(sizeof(T)) * kStageElems;
  static constexpr int kRowBytes = (sizeof(RowState) + 127) / 128 * 128;
  static constexpr int kKOff = kRowBytes;                // K: 2 stages
  static constexpr int kUOff = kKOff + 2 * kStageBytes;  // union: histograms | V and fold
  static constexpr int kHistBytes = kWarps * 16 * kHistStride * 4;
  static constexpr int kVBytes = 2 * kStageBytes;
  static constexpr int kFoldBytes = kBM * kFoldCap * 8;  // after V: the folded candidates
  static constexpr int kAttBytes = kVBytes + kFoldBytes;
  static constexpr int kUBytes = kHistBytes > kAttBytes ? kHistBytes : kAttBytes;
  static constexpr int kBytes = kUOff + kUBytes;
};

// ---- tiles ----

// Keys j0 .. j0 + kBN - 1 of one head into a shared stage; rows at or past S are zero-filled
// (their scores are masked, and P·V multiplies them by 0). The 2-byte types: src is the head's
// [S, D] rows, ss elements apart. float32: src is the head's split rows (split_kv_kernel: 2D
// floats a key, its TF32 high parts then remainders; ss = 2D), so a tile is one contiguous run
// of kBN * 2D floats, copied to the stage's high parts and, kStage on, its remainders: each
// thread's copies sit at fixed offsets from the tile's start.
template <typename T, int D>
__device__ __forceinline__ void load_tile(T* dst, const T* src, int64_t ss, int j0, int S) {
  if constexpr (kF32<T>) {
    constexpr int kRow = D / 2;                 // 16-byte copies a split row
    constexpr int kRowsEach = kThreads / kRow;  // rows one round of copies covers
    constexpr int kLds = Layout<T, D>::kLds;
    const int row = static_cast<int>(threadIdx.x) / kRow;
    const int col = static_cast<int>(threadIdx.x) % kRow * 4;  // of the split row
    T* d = dst + row * kLds + (col < D ? col : Layout<T, D>::kStage + col - D);
    const T* s = src + static_cast<int64_t>(j0) * (2 * D) + 4 * static_cast<int>(threadIdx.x);
#pragma unroll
    for (int i = 0; i < kBN<T, D> / kRowsEach; ++i) {
      const bool ok = j0 + row + i * kRowsEach < S;
      cp_async16(d + i * kRowsEach * kLds, ok ? s + i * 4 * kThreads : src, ok);
    }
  } else {
    constexpr int kVec = 16 / static_cast<int>(sizeof(T));  // elements per 16-byte copy
    constexpr int kChunksPerRow = D / kVec;
    constexpr int kChunks = kBN<T, D> * kChunksPerRow;
#pragma unroll
    for (int c = threadIdx.x; c < kChunks; c += kThreads) {
      const int row = c / kChunksPerRow, col = (c % kChunksPerRow) * kVec;
      const int j = j0 + row;
      const T* s = src + static_cast<int64_t>(j < S ? j : S - 1) * ss + col;
      cp_async16(dst + row * Layout<T, D>::kLds + col, s, j < S);
    }
  }
}

// The thread's Q operand for its two rows: m16n8k16 A fragments (packed pairs) for the 2-byte
// types; for float32 the raw values of the m16n8k8 A fragments, split into TF32 parts at use.
// q·k sums over the head dims in any order, so the float32 fragments take the dims permuted:
// A column t of k-step ks is dim 8 ks + 2t and column t + 4 is dim 8 ks + 2t + 1 (g = lane / 4,
// t = lane % 4; qa[ks] = rows g, g + 8 at column t, then at t + 4), and K's B fragment the same,
// so a thread's two K values are adjacent (one 8-byte load).
template <typename T, int D>
using QFrag = std::conditional_t<kF32<T>, float[D / 8][4], uint32_t[D / 16][4]>;

// x = hi + lo with both parts TF32, each rounded to nearest with ties away from zero (cvt.rna's
// rounding, bit for bit): the 3xTF32 split, about 2^-22 |x| off. Integer adds on the bits instead
// of cvt.rna.tf32.f32, which sm_90 emulates with a longer dependent sequence (results/gpu/
// tf32_split). NaN stays NaN: hi's add may wrap a NaN's bits, but lo = x - hi is then the canonical
// NaN 0x7fffffff, which the min keeps from wrapping (every other float's bits, as int32, are below
// it), so hi * b + lo * b is NaN as with cvt; inf splits into (inf, NaN) as with cvt.
__device__ __forceinline__ void split_tf32(float x, uint32_t& hi, uint32_t& lo) {
  hi = (__float_as_uint(x) + 0x1000u) & 0xffffe000u;
  const int l = static_cast<int>(__float_as_uint(__fsub_rn(x, __uint_as_float(hi))));
  lo = (static_cast<uint32_t>(min(l, 0x7fffefff)) + 0x1000u) & 0xffffe000u;
}

// float32: the scratch buffer of split K and V (split_kv_kernel), [2, B, Hkv, S, 2D] floats — K's
// rows, then V's, each key a row of its TF32 high parts then its remainders. The float offset of
// key s of (kv: 0 K, 1 V; batch b; KV head h); split_offset(a, 2, 0, 0, 0) floats in all.
// kD: the head dim where the caller knows it at compile time (the kernels: a.D by dispatch).
template <int kD = 0>
__host__ __device__ inline int64_t split_offset(const TopKAttentionArgs& a, int kv, int b, int h,
                                                int64_t s) {
  const int d = kD > 0 ? kD : a.D;
  const int64_t row = (static_cast<int64_t>(b) * a.Hkv + h) * a.S + s;
  return row * (2 * d) + kv * (static_cast<int64_t>(a.B) * a.Hkv * a.S * (2 * d));
}

// The first selection pass's group maxima, in the scratch buffer after the float32 split (if
// any): for every row of every block ([B, Hkv, blocks, kBM] rows, blockIdx.x's order), kGroups
// uint16 — the top 16 bits of the largest order key among the row's causal keys of each group of
// 2^gshift keys. Linear in T (256 bytes a query row), not in T S. Offset and size in bytes.
__host__ __device__ inline int64_t group_max_offset(const TopKAttentionArgs& a) {
  return a.type == ElemType::kFloat32
             ? split_offset(a, 2, 0, 0, 0) * static_cast<int64_t>(sizeof(float))
             : 0;
}
__host__ __device__ inline int64_t group_max_bytes(const TopKAttentionArgs& a) {
  const int P = kBM / (a.H / a.Hkv);  // positions a block takes
  const int64_t blocks = static_cast<int64_t>((a.T + P - 1) / P) * a.Hkv * a.B;
  return blocks * kBM * kGroups * static_cast<int64_t>(sizeof(uint16_t));
}

// float32, before the kernel: K's and V's rows split into TF32 high parts and remainders
// (split_tf32) into out, laid out as split_offset says. One thread per 4 dims of a row;
// blockIdx.y: 0 K, 1 V. Split once here instead of once a tile of every pass in every block.
template <int D>
__global__ void __launch_bounds__(256) split_kv_kernel(TopKAttentionArgs a, float* out) {
  constexpr int kQuads = D / 4;
  const int64_t rows = static_cast<int64_t>(a.B) * a.Hkv * a.S;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= rows * kQuads) return;
  const int64_t row = i / kQuads;
  const int c = static_cast<int>(i % kQuads) * 4;
  const int s = static_cast<int>(row % a.S);
  const int64_t bh = row / a.S;
  const int h = static_cast<int>(bh % a.Hkv), b = static_cast<int>(bh / a.Hkv);
  const bool v = blockIdx.y != 0;
  const float* src = static_cast<const float*>(v ? a.v : a.k) + b * (v ? a.v_sb : a.k_sb) +
                     h * (v ? a.v_sh : a.k_sh) + s * (v ? a.v_ss : a.k_ss) + c;
  const float4 x = *reinterpret_cast<const float4*>(src);
  uint4 hi, lo;
  split_tf32(x.x, hi.x, lo.x);
  split_tf32(x.y, hi.y, lo.y);
  split_tf32(x.z, hi.z, lo.z);
  split_tf32(x.w, hi.w, lo.w);
  float* dst = out + split_offset<D>(a, v ? 1 : 0, b, h, s) + c;
  *reinterpret_cast<uint4*>(dst) = hi;
  *reinterpret_cast<uint4*>(dst + D) = lo;
}

// c += a * b by 3xTF32 (the small products first), both operands given as hi / lo parts.
__device__ __forceinline__ void mma_3xtf32(float (&c)[4], const uint32_t (&ah)[4],
                                           const uint32_t (&al)[4], float bh0, float bh1, float bl0,
                                           float bl1) {
  mma1688_tf32(c, al, __float_as_uint(bh0), __float_as_uint(bh1));
  mma1688_tf32(c, ah, __float_as_uint(bl0), __float_as_uint(bl1));
  mma1688_tf32(c, ah, __float_as_uint(bh0), __float_as_uint(bh1));
}

// The warp's 16 x kBN score tile (float32: from the split stage): c[nb][*] holds keys nb * 8 +
// 2 * (lane % 4) + {0, 1} of rows lane / 4 ({0, 1}) and lane / 4 + 8 ({2, 3}), each q·k * scale
// (rounded as one product).
template <typename T, int D>
__device__ __forceinline__ void score_tile(const QFrag<T, D>& qa, const T* sk, float scale,
                                           float (&c)[kNB<T, D>][4]) {
  constexpr int kLds = Layout<T, D>::kLds;
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int nb = 0; nb < kNB<T, D>; ++nb) c[nb][0] = c[nb][1] = c[nb][2] = c[nb][3] = 0.0f;
  if constexpr (kF32<T>) {
    const int g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int ks = 0; ks < D / 8; ++ks) {
      uint32_t ah[4], al[4];
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float qx = qa[ks][e];
        // Head dim 128: Q split again each tile. Hoisted out of the tile loops (as nvcc does),
        // Q's parts take 128 registers a thread and the kernel spills; an opaque move keeps the
        // split here (1.06x faster at head dim 128; at 64 slower: results/gpu/first_pass).
        if constexpr (D >= 128) asm volatile("mov.b32 %0, %0;" : "+f"(qx));
        split_tf32(qx, ah[e], al[e]);
      }
#pragma unroll
      for (int nb = 0; nb < kNB<T, D>; ++nb) {
        // B: k = t (dim 8 ks + 2t) and t + 4 (the next dim), n = key nb * 8 + g
        const float* kp = sk + (nb * 8 + g) * kLds + 8 * ks + 2 * t;
        const float2 kh = *reinterpret_cast<const float2*>(kp);
        const float2 kl = *reinterpret_cast<const float2*>(kp + Layout<T, D>::kStage);
        mma_3xtf32(c[nb], ah, al, kh.x, kh.y, kl.x, kl.y);
      }
    }
  } else {
    const int i = lane >> 3, rr = lane & 7;
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks) {
#pragma unroll
      for (int np = 0; np < kNB<T, D> / 2; ++np) {
        uint32_t b0, b1, b2, b3;
        ldsm_x4(sk + ((2 * np + (i >> 1)) * 8 + rr) * kLds + 16 * ks + 8 * (i & 1), b0, b1, b2, b3);
        mma16816<T>(c[2 * np], qa[ks], b0, b1);
        mma16816<T>(c[2 * np + 1], qa[ks], b2, b3);
      }
    }
  }
#pragma unroll
  for (int nb = 0; nb < kNB<T, D>; ++nb)
#pragma unroll
    for (int e = 0; e < 4; ++e) c[nb][e] = __fmul_rn(c[nb][e], scale);
}

// An `after` of for_tiles that does nothing (the selection passes).
struct NoAfter {
  __device__ void operator()(int) const {}
};

// Walks key tiles 0 .. n_tiles - 1 (K, and V when sv != nullptr; as load_tile takes them) through
// two shared stages: body(stage, j0), then after(j0) once every warp is past that body. Tile
// it + 1 is copied while body(it) runs; after it, each thread waits for its own copies, and one
// barrier both publishes tile it + 1 and frees tile it's stage. after(it)
// runs beside body(it + 1) unless sync_after (a barrier behind it), so what body writes for after
// is then double-buffered by the tile's parity.
template <typename T, int D, typename Body, typename After>
__device__ __forceinline__ void for_tiles(int n_tiles, T* sk, const T* K, int64_t k_ss, T* sv,
                                          const T* V, int64_t v_ss, int S, Body body, After after,
                                          bool sync_after) {
  constexpr int kStage = Layout<T, D>::kStageElems;
  load_tile<T, D>(sk, K, k_ss, 0, S);
  if (sv != nullptr) load_tile<T, D>(sv, V, v_ss, 0, S);
  cp_async_commit();
  cp_async_wait<0>();
  __syncthreads();
  for (int it = 0; it < n_tiles; ++it) {
    const bool next = it + 1 < n_tiles;
    T* nk = sk + ((it + 1) & 1) * kStage;
    T* nv = sv == nullptr ? nullptr : sv + ((it + 1) & 1) * kStage;
    if (next) {
      load_tile<T, D>(nk, K, k_ss, (it + 1) * kBN<T, D>, S);
      if (nv != nullptr) load_tile<T, D>(nv, V, v_ss, (it + 1) * kBN<T, D>, S);
      cp_async_commit();
    }
    body(sk + (it & 1) * kStage, sv == nullptr ? nullptr : sv + (it & 1) * kStage, it * kBN<T, D>);
    if (next) cp_async_wait<0>();
    __syncthreads();
    if constexpr (!std::is_same_v<After, NoAfter>) {
      after(it * kBN<T, D>);
      if (sync_after) __syncthreads();
    }
  }
}

// The composite key (u, j) as one 48-bit integer: the order key above, the key index below.
__device__ __forceinline__ uint64_t composite(uint32_t u, uint32_t j) {
  return (static_cast<uint64_t>(u) << 16) | j;
}

// The order-key bits a prefix of pb <= 32 bits fixes: u lies inside the prefix of upre iff
// ((u ^ upre) & prefix_mask(pb)) == 0.
__device__ __forceinline__ uint32_t prefix_mask(int pb) {
  return pb == 0 ? 0u : 0xffffffffu << (32 - pb);
}

// Whether (u, j) lies inside a prefix of pb bits (upre, jpre: the prefix's composite key).
__device__ __forceinline__ bool in_prefix(int pb, uint32_t u, uint32_t j, uint32_t upre,
                                          uint32_t jpre) {
  if (pb <= 32) return ((u ^ upre) & prefix_mask(pb)) == 0u;
  return (composite(u, j) >> (kKeyBits - pb)) == (composite(upre, jpre) >> (kKeyBits - pb));
}

// The radix digit after a prefix of pb bits: the 8 bits below it, or for pb > 40 the last
// 48 - pb bits shifted to the digit's top (bins 2^(pb - 40) apart). kWide: the prefix may reach
// past bit 24 (into the key index); otherwise the digit lies in the order key.
template <bool kWide>
__device__ __forceinline__ int next_digit(int pb, uint32_t u, uint32_t j) {
  if constexpr (!kWide) {
    return static_cast<int>((u >> (24 - pb)) & 255u);
  } else {
    const int sh = kKeyBits - 8 - pb;
    const uint64_t k = composite(u, j);
    return static_cast<int>((sh >= 0 ? k >> sh : k << -sh) & 255u);
  }
}

template <typename T, int D>
struct Ctx {
  RowState* rs;
  T* sk;
  const T* K;
  int64_t k_ss;
  int S;
  float scale;
  int r0, r1;      // the thread's two rows
  int pos0, pos1;  // their positions (-1: padding)
  uint16_t* gmax;  // the block's rows' group maxima (group_max_offset), kGroups a row
  int gshift;      // log2 of a group's keys
};

// The bin of a row's histogram (8 bins a lane, v) holding its rank kk, counting from the top bin
// down: on every lane, the bin (-1 when the bins hold fewer than kk keys), its count, and the rank
// left inside it.
__device__ __forceinline__ void rank_bin(const int (&v)[8], int kk, int& bin, int& cnt, int& kk2) {
  const int lane = threadIdx.x & 31;
  int s = 0;
#pragma unroll
  for (int i = 0; i < 8; ++i) s += v[i];
  int suf = s;  // keys in this lane's bins and every higher lane's
#pragma unroll
  for (int off = 1; off < 32; off <<= 1) {
    const int x = __shfl_down_sync(0xffffffffu, suf, off);
    if (lane + off < 32) suf += x;
  }
  int acc = suf - s;
  bin = -1, cnt = 0, kk2 = 0;
  if (acc < kk && suf >= kk) {  // exactly one lane holds the rank's bin
#pragma unroll
    for (int i = 7; i >= 0; --i) {
      if (bin >= 0) continue;
      if (acc + v[i] >= kk) {
        bin = lane * 8 + i;
        cnt = v[i];
        kk2 = kk - acc;
      } else {
        acc += v[i];
      }
    }
  }
  const unsigned holder = __ballot_sync(0xffffffffu, bin >= 0);
  if (holder == 0) return;
  const int src = __ffs(static_cast<int>(holder)) - 1;
  bin = __shfl_sync(0xffffffffu, bin, src);
  cnt = __shfl_sync(0xffffffffu, cnt, src);
  kk2 = __shfl_sync(0xffffffffu, kk2, src);
}

enum PassKind { kFirstPass, kNarrowPass, kWidePass };

// One histogram pass over the causal tiles of the unresolved rows, then each warp picks its rows'
// bins (RowState updated; resolved rows leave `active`).
// kNarrowPass / kWidePass: a radix pass, the digit after each row's prefix (next_digit; narrow:
// every prefix of at most 24 bits); the rank's bin extends the prefix by 8 bits (the last 4 of 48
// at the end).
// kFirstPass (rows with no prefix yet): the order key's top 12 bits in two windows of 256 values,
// positive scores of magnitude 2^-16 to 2^16 in the low halves of the row's histogram words,
// negative ones in the high halves (a row's keys are fewer than 2^16: checked by the caller),
// the keys above the positive window and those between the windows counted in the row's padding
// word. A row whose rank lies in a window leaves with a 12-bit prefix; the others (scores at
// the rank beyond 2^16 or within 2^-16 of 0) stay as they were, for the radix passes.
template <int kKind, typename T, int D>
__device__ void hist_pass(const Ctx<T, D>& cx, const QFrag<T, D>& qa, uint32_t* hist, int n_tiles,
                          int wmax) {
  constexpr bool kFirst = kKind == kFirstPass;
  RowState& rs = *cx.rs;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, q4 = lane & 3, g4 = lane >> 2;
  const bool a0 = rs.active[cx.r0] != 0, a1 = rs.active[cx.r1] != 0;
  const uint32_t up0 = rs.upre[cx.r0], jp0 = rs.jpre[cx.r0];
  const uint32_t up1 = rs.upre[cx.r1], jp1 = rs.jpre[cx.r1];
  const int pb0 = rs.pb[cx.r0], pb1 = rs.pb[cx.r1];
  // (narrow pass: in_prefix's test with the rows' masks made once)
  const uint32_t pm0 = prefix_mask(pb0), pm1 = prefix_mask(pb1);
  const int lim0 = a0 ? cx.pos0 : -1, lim1 = a1 ? cx.pos1 : -1;
  uint32_t* h0 = hist + (warp * 16 + g4) * kHistStride;
  uint32_t* h1 = h0 + 8 * kHistStride;
  // (first pass) a key's histogram word and count, one atomic a key and no branch: its
  // window's bin, else the padding word (keys above the positive window in its low half, those
  // between the windows in its high half; those below the negative window add 0)
  const auto first = [](uint32_t u, uint32_t* h, bool in) {
    const uint32_t t = u >> (32 - kFirstBits);
    const bool pw = t - kPosBase < 256u, nw = t - kNegBase < 256u;
    const uint32_t w = pw ? t - kPosBase : nw ? t - kNegBase : static_cast<uint32_t>(kBins);
    const uint32_t inc = pw || t >= kPosBase + 256u ? 1u : t >= kNegBase ? 0x10000u : 0u;
    if (in) atomicAdd(h + w, inc);
  };
  uint32_t gm0 = 0, gm1 = 0;  // (first pass) the rows' largest order keys in the current group
  for_tiles<T, D>(
      n_tiles, cx.sk, cx.K, cx.k_ss, nullptr, nullptr, 0, cx.S,
      [&](const T* sk, const T*, int j0) {
        if (j0 > wmax) return;  // no unresolved row of this warp sees these keys
        float c[kNB<T, D>][4];
        score_tile<T, D>(qa, sk, cx.scale, c);
#pragma unroll
        for (int nb = 0; nb < kNB<T, D>; ++nb)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const int j = j0 + nb * 8 + 2 * q4 + e;
            const uint32_t u0 = order_key(c[nb][e]), u1 = order_key(c[nb][2 + e]);
            if constexpr (kFirst) {
              first(u0, h0, j <= lim0);
              first(u1, h1, j <= lim1);
              gm0 = max(gm0, j <= lim0 ? u0 : 0u);
              gm1 = max(gm1, j <= lim1 ? u1 : 0u);
            } else if constexpr (kKind == kNarrowPass) {
              // (profiling switch 8: no atomics)
              if (j <= lim0 && ((u0 ^ up0) & pm0) == 0u &&
                  ((kTiledProfile & 8) == 0 || j == kTiledProfile + 1000))
                atomicAdd(h0 + next_digit<false>(pb0, u0, 0u), 1u);
              if (j <= lim1 && ((u1 ^ up1) & pm1) == 0u &&
                  ((kTiledProfile & 8) == 0 || j == kTiledProfile + 1000))
                atomicAdd(h1 + next_digit<false>(pb1, u1, 0u), 1u);
            } else {
              const uint32_t uj = static_cast<uint32_t>(j);
              if (j <= lim0 && in_prefix(pb0, u0, uj, up0, jp0))
                atomicAdd(h0 + next_digit<true>(pb0, u0, uj), 1u);
              if (j <= lim1 && in_prefix(pb1, u1, uj, up1, jp1))
                atomicAdd(h1 + next_digit<true>(pb1, u1, uj), 1u);
            }
          }
        // (first pass) at a group's end, or the warp's last tile: its rows' maxima out
        if constexpr (kFirst) {
          const int jn = j0 + kBN<T, D>;
          if ((jn & ((1 << cx.gshift) - 1)) == 0 || jn > wmax) {
#pragma unroll
            for (int off = 1; off <= 2; off <<= 1) {
              gm0 = max(gm0, __shfl_xor_sync(0xffffffffu, gm0, off));
              gm1 = max(gm1, __shfl_xor_sync(0xffffffffu, gm1, off));
            }
            if (q4 == 0) {
              const int gi = j0 >> cx.gshift;
              cx.gmax[cx.r0 * kGroups + gi] = static_cast<uint16_t>(gm0 >> 16);
              cx.gmax[cx.r1 * kGroups + gi] = static_cast<uint16_t>(gm1 >> 16);
            }
            gm0 = gm1 = 0;
          }
        }
      },
      NoAfter{}, false);
  // Each warp reads its own histograms: the rank's bin per unresolved row (a suffix scan over
  // lanes holding 8 bins each), then clears them for the next pass.
  uint32_t* hw = hist + warp * 16 * kHistStride;
  for (int rr = 0; rr < 16; ++rr) {
    const int r = warp * 16 + rr;
    if (!rs.active[r]) continue;
    const int kk = rs.kk[r];
    uint32_t upre = rs.upre[r], jpre = rs.jpre[r];
    int pb = rs.pb[r];
    int v[8], bin, cnt, kk2;
    if constexpr (kFirst) {
      uint32_t w[8];
      int np = 0, nn = 0;  // keys in the positive and the negative window
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        w[i] = hw[rr * kHistStride + lane * 8 + i];
        np += static_cast<int>(w[i] & 0xffffu);
        nn += static_cast<int>(w[i] >> 16);
      }
      np = __reduce_add_sync(0xffffffffu, np);
      nn = __reduce_add_sync(0xffffffffu, nn);
      const uint32_t out = hw[rr * kHistStride + kBins];
      const int k1 = kk - static_cast<int>(out & 0xffffu);   // the rank below the keys above
      const int k2 = k1 - np - static_cast<int>(out >> 16);  // ... below the positive window too
      const bool pos_w = k1 >= 1 && k1 <= np, neg_w = k2 >= 1 && k2 <= nn;
      if (!pos_w && !neg_w) {  // (warp-uniform) the radix passes take the row
#if (CSA_TILED_PROFILE & 16) != 0
        if (lane == 0) atomicAdd(&g_tiled_stats[kStatFirstMissed], 1ull);
#endif
        continue;
      }
#pragma unroll
      for (int i = 0; i < 8; ++i) v[i] = static_cast<int>(pos_w ? w[i] & 0xffffu : w[i] >> 16);
      rank_bin(v, pos_w ? k1 : k2, bin, cnt, kk2);
      if (bin < 0) continue;  // (not met: the window holds the rank)
      upre = ((pos_w ? kPosBase : kNegBase) + static_cast<uint32_t>(bin)) << (32 - kFirstBits);
      pb = kFirstBits;
    } else {
#pragma unroll
      for (int i = 0; i < 8; ++i) v[i] = static_cast<int>(hw[rr * kHistStride + lane * 8 + i]);
      rank_bin(v, kk, bin, cnt, kk2);
      if (bin < 0) continue;  // (not met: the prefix holds the rank)
      const int sh = kKeyBits - 8 - pb;
      const uint64_t p = composite(upre, jpre) | (sh >= 0 ? static_cast<uint64_t>(bin) << sh
                                                          : static_cast<uint64_t>(bin) >> -sh);
      upre = static_cast<uint32_t>(p >> 16), jpre = static_cast<uint32_t>(p & 0xffffu);
      pb = min(pb + 8, kKeyBits);
    }
    if (lane == 0) {
      rs.upre[r] = upre;
      rs.jpre[r] = jpre;
      rs.kk[r] = kk2;
      rs.cnt[r] = cnt;
      rs.pb[r] = pb;
      if (cnt == kk2) {  // the whole bin is kept: keep (u, j) >= the prefix
        rs.tau[r] = upre;
        rs.jcut[r] = jpre;
        rs.active[r] = 0;
      }
    }
  }
  __syncwarp();
  for (int i = lane; i < 16 * kHistStride; i += 32) hw[i] = 0;
}

// The warp's largest causal limit among its rows (lim0 / lim1: the thread's two rows', -1 for
// none), also left in rs.wmax[warp] for the caller's barrier to publish.
__device__ __forceinline__ int warp_limit(RowState& rs, int lim0, int lim1) {
  int wm = max(lim0, lim1);
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) wm = max(wm, __shfl_xor_sync(0xffffffffu, wm, off));
  if ((threadIdx.x & 31) == 0) rs.wmax[threadIdx.x >> 5] = wm;
  return wm;
}

template <typename T, int D>
__global__ void __launch_bounds__(kThreads, 2)
    tiled_topk_kernel(TopKAttentionArgs a, int G, int P) {
  constexpr int dbg = kTiledProfile;  // compile-time: its tests vanish from normal builds
  using L = Layout<T, D>;
  extern __shared__ __align__(128) unsigned char smem[];
  RowState& rs = *reinterpret_cast<RowState*>(smem);
  T* sk = reinterpret_cast<T*>(smem + L::kKOff);
  unsigned char* uni = smem + L::kUOff;
  uint32_t* hist = reinterpret_cast<uint32_t*>(uni);
  T* sv = reinterpret_cast<T*>(uni);
  uint2* fbuf = reinterpret_cast<uint2*>(uni + L::kVBytes);

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g4 = lane >> 2, q4 = lane & 3;
  const int rb = static_cast<int>(gridDim.x) - 1 - static_cast<int>(blockIdx.x);  // late rows first
  const int kvh = blockIdx.y, b = blockIdx.z;
  const int t0 = rb * P;
  const int shift = a.S - a.T;  // query t sits at position shift + t

  // Row setup: budget, "keeps every causal key", reads of the query side.
  if (tid < kBM) {
    const int r = tid, p = r / G, g = r - p * G, t = t0 + p;
    int pos = -1, act = 0;
    uint32_t tau = 0xffffffffu, jcut = 0xffffffffu;
    int kb = 0;
    if (p < P && t < a.T) {
      const int h = kvh * G + g;
      pos = shift + t;
      const int n = pos + 1;
      int band = 0;
      while (band + 1 < a.NB && a.band_start[band + 1] <= pos) ++band;
      kb = min(a.budget[h * a.NB + band], n);
      atomicAdd(&a.q_reads[h], static_cast<unsigned long long>(kb));
      if (G == 1) atomicAdd(&a.kv_reads[kvh], static_cast<unsigned long long>(kb));
      if (kb >= n) {
        tau = 0, jcut = 0;  // every causal key
      } else {
        act = 1;
      }
    }
    rs.tau[r] = tau, rs.jcut[r] = jcut, rs.upre[r] = 0, rs.jpre[r] = 0;
    rs.kk[r] = kb, rs.cnt[r] = pos + 1, rs.active[r] = act, rs.pos[r] = pos, rs.pb[r] = 0;
  }
  for (int i = tid; i < kWarps * 16 * kHistStride; i += kThreads) hist[i] = 0;
  __syncthreads();

  Ctx<T, D> cx;
  cx.rs = &rs;
  cx.sk = sk;
  // The tiles' sources (load_tile): K's and V's rows of the head, or for float32 their split
  // rows in the scratch buffer (split_kv_kernel: K's, then V's).
  const T* K = static_cast<const T*>(a.k) + b * a.k_sb + kvh * a.k_sh;
  const T* V = static_cast<const T*>(a.v) + b * a.v_sb + kvh * a.v_sh;
  const T* v_tiles = V;
  int64_t v_tiles_ss = a.v_ss;
  if constexpr (kF32<T>) {
    cx.K = static_cast<const float*>(a.scratch) + split_offset<D>(a, 0, b, kvh, 0);
    cx.k_ss = 2 * D;
    v_tiles = static_cast<const float*>(a.scratch) + split_offset<D>(a, 1, b, kvh, 0);
    v_tiles_ss = 2 * D;
  } else {
    cx.K = K;
    cx.k_ss = a.k_ss;
  }
  cx.S = a.S;
  cx.scale = a.scale;
  cx.r0 = warp * 16 + g4;
  cx.r1 = cx.r0 + 8;
  cx.pos0 = rs.pos[cx.r0];
  cx.pos1 = rs.pos[cx.r1];
  int bpos = -1;  // the block's last position
  for (int r = 0; r < kBM; ++r) bpos = max(bpos, rs.pos[r]);
  cx.gmax = reinterpret_cast<uint16_t*>(static_cast<char*>(a.scratch) + group_max_offset(a)) +
            ((static_cast<int64_t>(b) * a.Hkv + kvh) * gridDim.x + blockIdx.x) * (kBM * kGroups);
  cx.gshift = 31 - __clz(kBN<T, D>);  // groups of whole tiles, kGroups of them past bpos
  while ((kGroups << cx.gshift) <= bpos) ++cx.gshift;

  // Q fragments (A operand of m16n8k16, or the raw m16n8k8 values for float32) of the thread's
  // rows, straight from global memory.
  QFrag<T, D> qa;
  {
    const T* qb = static_cast<const T*>(a.q) + b * a.q_sb;
    const T* q0 = nullptr;
    const T* q1 = nullptr;
    if (cx.pos0 >= 0)
      q0 = qb + (kvh * G + cx.r0 % G) * a.q_sh + static_cast<int64_t>(t0 + cx.r0 / G) * a.q_st;
    if (cx.pos1 >= 0)
      q1 = qb + (kvh * G + cx.r1 % G) * a.q_sh + static_cast<int64_t>(t0 + cx.r1 / G) * a.q_st;
    if constexpr (kF32<T>) {
#pragma unroll
      for (int ks = 0; ks < D / 8; ++ks) {  // dims 8 ks + 2t, + 1 (QFrag)
        const int c = 8 * ks + 2 * q4;
        const float2 z = make_float2(0.0f, 0.0f);
        const float2 x0 = q0 ? *reinterpret_cast<const float2*>(q0 + c) : z;
        const float2 x1 = q1 ? *reinterpret_cast<const float2*>(q1 + c) : z;
        qa[ks][0] = x0.x, qa[ks][1] = x1.x, qa[ks][2] = x0.y, qa[ks][3] = x1.y;
      }
    } else {
#pragma unroll
      for (int ks = 0; ks < D / 16; ++ks) {
        const int c = 16 * ks + 2 * q4;
        qa[ks][0] = q0 ? *reinterpret_cast<const uint32_t*>(q0 + c) : 0u;
        qa[ks][1] = q1 ? *reinterpret_cast<const uint32_t*>(q1 + c) : 0u;
        qa[ks][2] = q0 ? *reinterpret_cast<const uint32_t*>(q0 + c + 8) : 0u;
        qa[ks][3] = q1 ? *reinterpret_cast<const uint32_t*>(q1 + c + 8) : 0u;
      }
    }
  }

  // ---- selection ----
  if (dbg & 2) {  // profiling: no selection, every causal key kept
    if (tid < kBM && rs.pos[tid] >= 0) rs.tau[tid] = 0, rs.jcut[tid] = 0, rs.active[tid] = 0;
    __syncthreads();
  }
  bool fold = false;    // rows still active rank their candidates after the attention pass
  bool maxima = false;  // the first pass ran: cx.gmax holds every selecting row's group maxima
  int hist_passes = 0;  // (profiling switch 16)
  // The first pass (12-bit windows) needs a row's keys to fit a histogram word's half.
  int bmax = -1;
  for (int r = 0; r < kBM; ++r) bmax = rs.active[r] != 0 ? max(bmax, rs.pos[r]) : bmax;
  const bool first_fits = bmax < 65535;
  // The first pass, then radix passes of 8 bits (4 at the end) until every row is resolved or
  // every unresolved row's prefix (of the order key) holds at most kFoldCap keys: the attention
  // pass then gathers them and ranks them after (fold). At most 7 passes: 12 bits, then 8 at a
  // time to 48.
  for (int pass = 0; pass < 8; ++pass) {
    const bool a0 = rs.active[cx.r0] != 0, a1 = rs.active[cx.r1] != 0;
    const int wm = warp_limit(rs, a0 ? cx.pos0 : -1, a1 ? cx.pos1 : -1);
    const bool act = tid < kBM && rs.active[tid] != 0;
    const int tiny = act && (rs.cnt[tid] > kFoldCap || rs.pb[tid] > 32) ? 0 : 1;
    const int wide = act && rs.pb[tid] > 24 ? 1 : 0;
    if (__syncthreads_count(a0 || a1) == 0) break;
    if (__syncthreads_and(tiny) != 0) {
      fold = true;
      break;
    }
    const int n_tiles =
        max(max(rs.wmax[0], rs.wmax[1]), max(rs.wmax[2], rs.wmax[3])) / kBN<T, D> + 1;
    ++hist_passes;
    if (pass == 0 && first_fits) {
      hist_pass<kFirstPass, T, D>(cx, qa, hist, n_tiles, wm);
      maxima = true;
    } else if (__syncthreads_or(wide) != 0) {
      hist_pass<kWidePass, T, D>(cx, qa, hist, n_tiles, wm);
    } else {
      hist_pass<kNarrowPass, T, D>(cx, qa, hist, n_tiles, wm);
    }
    __syncthreads();
    if (dbg & 4) break;  // profiling: the first pass alone
  }
  __syncthreads();      // selection done; the union region now holds V tiles
  if (dbg & 1) return;  // profiling: selection alone (without the folded candidates' ranking)
  if (fold && tid < kBM) rs.cnt[tid] = 0, rs.snap[tid] = 0;  // (for_tiles' barrier orders it)

  // ---- attention over the kept keys ----
  // Per row, keep iff score >= hi, or score >= lo and j >= jc: a resolved row's (tau, jcut) as
  // floats (lo = tau, hi = the next key); a folding row's prefix [lo, hi) holds its candidates,
  // gathered here (jc never met) and ranked after the pass.
  float lo0, hi0, lo1, hi1;
  uint32_t jc0, jc1;
  uint32_t lk0, lk1;  // the top 16 bits of the least order key a row keeps or gathers
  bool fold0, fold1;
  {
    const auto bounds = [&](int r, float& lo, float& hi, uint32_t& jc, bool& fr, uint32_t& lk) {
      fr = fold && rs.active[r] != 0;
      if (fr) {
        const uint64_t w = 1ull << (32 - rs.pb[r]);
        const uint64_t p = static_cast<uint64_t>(rs.upre[r]) & ~(w - 1);
        lo = key_floor(p), hi = key_floor(p + w), jc = 0xffffffffu;
        lk = static_cast<uint32_t>(p >> 16);
      } else {
        const uint32_t tau = rs.tau[r];
        lo = key_floor(tau), hi = key_floor(static_cast<uint64_t>(tau) + 1), jc = rs.jcut[r];
        lk = tau >> 16;
      }
    };
    bounds(cx.r0, lo0, hi0, jc0, fold0, lk0);
    bounds(cx.r1, lo1, hi1, jc1, fold1, lk1);
  }
  const int pos0 = cx.pos0, pos1 = cx.pos1;
  int wpos = max(pos0, pos1);
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) wpos = max(wpos, __shfl_xor_sync(0xffffffffu, wpos, off));

  // (profiling switch 16: the rows that select, their bound e and margin counts)
  float e0 = 0.0f, e1 = 0.0f;
  unsigned mg0 = 0, mg1 = 0;
  const auto selecting = [&](int r) {
    return rs.pos[r] >= 0 && (rs.active[r] != 0 || rs.tau[r] != 0u || rs.jcut[r] != 0u);
  };
  const bool sel0 = selecting(cx.r0), sel1 = selecting(cx.r1);
  if constexpr ((dbg & 16) != 0 && kF32<T>) {
    __shared__ unsigned int kmax_bits;
    if (tid == 0) kmax_bits = 0u;
    __syncthreads();
    float km = 0.0f;
    for (int j = tid; j <= bpos; j += kThreads) {
      const T* kr = K + static_cast<int64_t>(j) * a.k_ss;
      float s2 = 0.0f;
      for (int d = 0; d < D; ++d) s2 += kr[d] * kr[d];
      km = fmaxf(km, s2);
    }
    atomicMax(&kmax_bits, __float_as_uint(km));
    __syncthreads();
    float q0s = 0.0f, q1s = 0.0f;
#pragma unroll
    for (int ks = 0; ks < D / 8; ++ks) {
      q0s += qa[ks][0] * qa[ks][0] + qa[ks][2] * qa[ks][2];
      q1s += qa[ks][1] * qa[ks][1] + qa[ks][3] * qa[ks][3];
    }
    q0s += __shfl_xor_sync(0xffffffffu, q0s, 1);
    q0s += __shfl_xor_sync(0xffffffffu, q0s, 2);
    q1s += __shfl_xor_sync(0xffffffffu, q1s, 1);
    q1s += __shfl_xor_sync(0xffffffffu, q1s, 2);
    const float kn = sqrtf(__uint_as_float(kmax_bits)) * a.scale * 0x1p-9f;
    e0 = sqrtf(q0s) * kn, e1 = sqrtf(q1s) * kn;
  }

  float o[D / 8][4];
#pragma unroll
  for (int nd = 0; nd < D / 8; ++nd) o[nd][0] = o[nd][1] = o[nd][2] = o[nd][3] = 0.0f;
  float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;
  unsigned long long union_reads = 0;
  const int i8 = lane >> 3, rr8 = lane & 7;
  const auto candidate = [&](int r, float x, int j) {
    const int slot = atomicAdd(&rs.cnt[r], 1);
    if (slot < kFoldCap)
      fbuf[r * kFoldCap + slot] = make_uint2(order_key(x), static_cast<uint32_t>(j));
  };
  // float32 (32-key tiles, where a barrier a tile costs most): the KV-union step of a tile runs
  // beside the next tile's body, so the kept masks alternate by tile parity; the 2-byte types
  // (64-key tiles, registers at their limit at head dim 128) keep one set and a barrier behind it.
  constexpr bool kUnionBeside = kF32<T>;
  const auto parity = [](int j0) { return static_cast<unsigned>(j0) / kBN<T, D> % 2u; };
  const auto kept_masks = [&](int j0) -> unsigned long long* {
    return rs.kept[kUnionBeside ? parity(j0) : 0u];
  };

  // The attention pass's work on one tile (below, with the tile's candidate counts after it).
  const auto attend_tile = [&](const T* skt, const T* svt, int j0) {
    unsigned long long* kept = kept_masks(j0);
    // the warp's rows keep nothing of this tile (what the KV-union step reads)
    const auto clear_kept = [&] {
      if (G > 1 && q4 == 0) kept[cx.r0] = kept[cx.r1] = 0;
    };
    if (j0 > wpos) return clear_kept();
    // No row of the warp reaches the least key it keeps or gathers within this tile's group (the
    // first pass's maxima; a row with lk 0 keeps from the bottom): nothing to score, keep or
    // gather here. (Profiling switch 16: the margin counts leave these tiles out.)
    if (maxima) {
      const int gi = j0 >> cx.gshift;
      const bool need = (pos0 >= j0 && (lk0 == 0u || cx.gmax[cx.r0 * kGroups + gi] >= lk0)) ||
                        (pos1 >= j0 && (lk1 == 0u || cx.gmax[cx.r1 * kGroups + gi] >= lk1));
      if (!__any_sync(0xffffffffu, need)) {
#if (CSA_TILED_PROFILE & 16) != 0
        if (lane == 0) {
          atomicAdd(&g_tiled_stats[kStatWarpTiles], 1ull);
          atomicAdd(&g_tiled_stats[kStatWarpTilesEmpty], 1ull);
          atomicAdd(&g_tiled_stats[kStatWarpTilesUnscored], 1ull);
        }
#endif
        return clear_kept();
      }
    }
    float c[kNB<T, D>][4];
    score_tile<T, D>(qa, skt, a.scale, c);
    unsigned long long k0 = 0, k1 = 0;  // bit nb * 8 + e: key nb * 8 + 2 q4 + e
    float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
    for (int nb = 0; nb < kNB<T, D>; ++nb)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int j = j0 + nb * 8 + 2 * q4 + e;
        const float x0 = c[nb][e], x1 = c[nb][2 + e];
        const bool keep0 =
            j <= pos0 && (x0 >= hi0 || (x0 >= lo0 && static_cast<uint32_t>(j) >= jc0));
        const bool keep1 =
            j <= pos1 && (x1 >= hi1 || (x1 >= lo1 && static_cast<uint32_t>(j) >= jc1));
        if (fold0 && j <= pos0 && x0 >= lo0 && !(x0 >= hi0)) candidate(cx.r0, x0, j);
        if (fold1 && j <= pos1 && x1 >= lo1 && !(x1 >= hi1)) candidate(cx.r1, x1, j);
        if constexpr ((dbg & 16) != 0) {
          const auto margin = [](bool fr, float x, float lo, float hi, float e) {
            return fr ? ((x >= lo - e && x < lo) || (x >= hi && x < hi + e)) : fabsf(x - lo) <= e;
          };
          if (sel0 && j <= pos0) mg0 += margin(fold0, x0, lo0, hi0, e0);
          if (sel1 && j <= pos1) mg1 += margin(fold1, x1, lo1, hi1, e1);
        }
        if (!keep0) c[nb][e] = -INFINITY;
        if (!keep1) c[nb][2 + e] = -INFINITY;
        k0 |= static_cast<unsigned long long>(keep0) << (nb * 8 + e);
        k1 |= static_cast<unsigned long long>(keep1) << (nb * 8 + e);
        mx0 = fmaxf(mx0, c[nb][e]);
        mx1 = fmaxf(mx1, c[nb][2 + e]);
      }
    // A tile of which no row of the warp keeps a key adds nothing: no softmax update, no
    // P·V (the state stays as it is; the full step would scale it by exp2(m log2 e -
    // m log2 e), 1 up to that product's rounding).
    const bool any_kept = __any_sync(0xffffffffu, (k0 | k1) != 0ull);
#if (CSA_TILED_PROFILE & 16) != 0
    if (lane == 0) {
      atomicAdd(&g_tiled_stats[kStatWarpTiles], 1ull);
      if (!any_kept) atomicAdd(&g_tiled_stats[kStatWarpTilesEmpty], 1ull);
    }
#endif
    if (!any_kept) return clear_kept();
    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
    const float n0 = fmaxf(m0, mx0), n1 = fmaxf(m1, mx1);
    // n == -inf: no key kept so far; probabilities stay 0 and the state is unchanged
    const float ms0 = n0 == -INFINITY ? 0.0f : n0 * kLog2e;
    const float ms1 = n1 == -INFINITY ? 0.0f : n1 * kLog2e;
    const float al0 = n0 == -INFINITY ? 1.0f : fast_exp2(m0 * kLog2e - ms0);
    const float al1 = n1 == -INFINITY ? 1.0f : fast_exp2(m1 * kLog2e - ms1);
    m0 = n0, m1 = n1;
    float s0 = 0.0f, s1 = 0.0f;
#pragma unroll
    for (int nb = 0; nb < kNB<T, D>; ++nb) {
      c[nb][0] = fast_exp2(c[nb][0] * kLog2e - ms0);
      c[nb][1] = fast_exp2(c[nb][1] * kLog2e - ms0);
      c[nb][2] = fast_exp2(c[nb][2] * kLog2e - ms1);
      c[nb][3] = fast_exp2(c[nb][3] * kLog2e - ms1);
      s0 += c[nb][0] + c[nb][1];
      s1 += c[nb][2] + c[nb][3];
    }
    l0 = l0 * al0 + s0;
    l1 = l1 * al1 + s1;
#pragma unroll
    for (int nd = 0; nd < D / 8; ++nd) {
      o[nd][0] *= al0, o[nd][1] *= al0, o[nd][2] *= al1, o[nd][3] *= al1;
    }
    if constexpr (kF32<T>) {
      // P (16 x kBN) as m16n8k8 A fragments per 8 keys, the k index permuted so that the
      // score tile's layout is the fragment: column t is key 2t, column t + 4 key 2t + 1
      // (V's rows follow the same permutation). The output dims are permuted too: column n
      // of dim block nd is dim (D / 8) n + nd, so a thread's V values of a row (n = g) are
      // D / 8 adjacent floats (16-byte loads) and its outputs D / 8 adjacent dims.
#pragma unroll
      for (int nb = 0; nb < kNB<T, D>; ++nb) {
        uint32_t ph[4], pl[4];
        split_tf32(c[nb][0], ph[0], pl[0]);
        split_tf32(c[nb][2], ph[1], pl[1]);
        split_tf32(c[nb][1], ph[2], pl[2]);
        split_tf32(c[nb][3], ph[3], pl[3]);
        const float* vr = svt + (nb * 8 + 2 * q4) * L::kLds + (D / 8) * g4;
#pragma unroll
        for (int n4 = 0; n4 < D / 32; ++n4) {  // V split: high parts, remainders kStage on
          const float4 h0 = *reinterpret_cast<const float4*>(vr + 4 * n4);
          const float4 h1 = *reinterpret_cast<const float4*>(vr + L::kLds + 4 * n4);
          const float4 r0 = *reinterpret_cast<const float4*>(vr + L::kStage + 4 * n4);
          const float4 r1 = *reinterpret_cast<const float4*>(vr + L::kStage + L::kLds + 4 * n4);
          mma_3xtf32(o[4 * n4], ph, pl, h0.x, h1.x, r0.x, r1.x);
          mma_3xtf32(o[4 * n4 + 1], ph, pl, h0.y, h1.y, r0.y, r1.y);
          mma_3xtf32(o[4 * n4 + 2], ph, pl, h0.z, h1.z, r0.z, r1.z);
          mma_3xtf32(o[4 * n4 + 3], ph, pl, h0.w, h1.w, r0.w, r1.w);
        }
      }
    } else {
#pragma unroll
      for (int kc = 0; kc < kNB<T, D> / 2; ++kc) {
        const uint32_t pa[4] = {pack2<T>(c[2 * kc][0], c[2 * kc][1]),
                                pack2<T>(c[2 * kc][2], c[2 * kc][3]),
                                pack2<T>(c[2 * kc + 1][0], c[2 * kc + 1][1]),
                                pack2<T>(c[2 * kc + 1][2], c[2 * kc + 1][3])};
#pragma unroll
        for (int ndp = 0; ndp < D / 16; ++ndp) {
          uint32_t b0, b1, b2, b3;
          ldsm_x4_t(svt + (16 * kc + (i8 & 1) * 8 + rr8) * L::kLds + 16 * ndp + (i8 >> 1) * 8, b0,
                    b1, b2, b3);
          mma16816<T>(o[2 * ndp], pa, b0, b1);
          mma16816<T>(o[2 * ndp + 1], pa, b2, b3);
        }
      }
    }
    if (G > 1) {
      k0 <<= 2 * q4, k1 <<= 2 * q4;
#pragma unroll
      for (int off = 1; off <= 2; off <<= 1) {
        k0 |= __shfl_xor_sync(0xffffffffu, k0, off);
        k1 |= __shfl_xor_sync(0xffffffffu, k1, off);
      }
      if (q4 == 0) kept[cx.r0] = k0, kept[cx.r1] = k1;
    }
  };
  for_tiles<T, D>(
      bpos / kBN<T, D> + 1, sk, cx.K, cx.k_ss, sv, v_tiles, v_tiles_ss, a.S,
      [&](const T* skt, const T* svt, int j0) {
        attend_tile(skt, svt, j0);
        if (kUnionBeside && fold) {  // the warp's rows' candidate counts after this tile, by
          __syncwarp();              // its parity, for the tile's KV-union step beside the next
          if (q4 == 0) {
            int* tc = rs.tcnt[parity(j0)];
            tc[cx.r0] = rs.cnt[cx.r0], tc[cx.r1] = rs.cnt[cx.r1];
          }
        }
      },
      [&](int j0) {
        // KV union: per position of the block, the keys any head of the group keeps; the
        // tile's new candidates of folding rows marked (bit 31) when that union holds them.
        if (G > 1 && tid < P && rs.pos[tid * G] >= 0) {
          const unsigned long long* kept = kept_masks(j0);
          unsigned long long m = 0;
          for (int g = 0; g < G; ++g) m |= kept[tid * G + g];
          union_reads += static_cast<unsigned long long>(__popcll(m));
          if (fold) {
            for (int g = 0; g < G; ++g) {
              // (float32: the counts the tile's body left, not the next body's)
              const int r = tid * G + g;
              const int n = min(kUnionBeside ? rs.tcnt[parity(j0)][r] : rs.cnt[r], kFoldCap);
              for (int i = rs.snap[r]; i < n; ++i) {
                const uint32_t y = fbuf[r * kFoldCap + i].y;
                fbuf[r * kFoldCap + i].y =
                    y | (static_cast<uint32_t>((m >> ((y & 0xffffu) - j0)) & 1u) << 31);
              }
              rs.snap[r] = n;
            }
          }
        }
      },
      !kUnionBeside);

  // Folding rows: each row's candidates (at most kFoldCap) ranked by the warp, two a lane, and
  // the kept ones (rank < kk) written back in rank order; then every thread adds its two rows'
  // kept candidates in that order (scores from the order keys, V rows from global memory), all
  // rows at once.
  if (fold) {
    // a folding row's candidates (the attention pass counted them) and kept ones among them
    const auto gathered = [&](int r) { return min(rs.cnt[r], kFoldCap); };
    const auto kept = [&](int r) { return min(rs.kk[r], gathered(r)); };
    __syncthreads();  // the last tile's candidates are marked
    for (int rr = 0; rr < 16; ++rr) {
      const int r = warp * 16 + rr;
      if (!rs.active[r]) continue;
      const int n = gathered(r), kk = kept(r);
      uint2* fb = fbuf + r * kFoldCap;
      uint2 e[2];
      unsigned long long key[2];
      int rank[2] = {0, 0};
#pragma unroll
      for (int s2 = 0; s2 < 2; ++s2) {  // candidates lane and lane + 32
        e[s2] = lane + 32 * s2 < n ? fb[lane + 32 * s2] : make_uint2(0u, 0u);
        key[s2] = (static_cast<unsigned long long>(e[s2].x) << 32) | (e[s2].y & 0xffffu);
      }
      for (int i = 0; i < n; ++i) {
        const unsigned long long ki = __shfl_sync(0xffffffffu, i < 32 ? key[0] : key[1], i & 31);
        rank[0] += ki > key[0];
        rank[1] += ki > key[1];
      }
      __syncwarp();  // every candidate read before the kept ones move
#pragma unroll
      for (int s2 = 0; s2 < 2; ++s2)
        if (lane + 32 * s2 < n && rank[s2] < kk) fb[rank[s2]] = e[s2];
    }
    __syncwarp();
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      const int r = hh == 0 ? cx.r0 : cx.r1;
      if (!rs.active[r]) continue;
      const int kk = kept(r);
      if (kk < 1) continue;
      const uint2* fb = fbuf + r * kFoldCap;
      float& mh = hh == 0 ? m0 : m1;
      float& lh = hh == 0 ? l0 : l1;
      const float mn = fmaxf(mh, key_value(fb[0].x)), msn = mn * kLog2e;
      const float al = fast_exp2(mh * kLog2e - msn);  // 0 when nothing was kept before
#pragma unroll
      for (int nd = 0; nd < D / 8; ++nd) o[nd][2 * hh] *= al, o[nd][2 * hh + 1] *= al;
      lh *= al;
      mh = mn;
#pragma unroll 2
      for (int t = 0; t < kk; ++t) {
        const uint2 cand = fb[t];
        const float p = fast_exp2(key_value(cand.x) * kLog2e - msn);
        if (q4 == 0) lh += p;
        const T* vr = V + static_cast<int64_t>(cand.y & 0xffffu) * a.v_ss;
        if constexpr (kF32<T>) {  // o[nd][2 hh + e2] is dim (D / 8)(2 q4 + e2) + nd
#pragma unroll
          for (int e2 = 0; e2 < 2; ++e2) {
            const float* ve = vr + (D / 8) * (2 * q4 + e2);
#pragma unroll
            for (int n4 = 0; n4 < D / 32; ++n4) {
              const float4 v4 = *reinterpret_cast<const float4*>(ve + 4 * n4);
              o[4 * n4][2 * hh + e2] += p * v4.x;
              o[4 * n4 + 1][2 * hh + e2] += p * v4.y;
              o[4 * n4 + 2][2 * hh + e2] += p * v4.z;
              o[4 * n4 + 3][2 * hh + e2] += p * v4.w;
            }
          }
        } else {  // o[nd][2 hh + e2] is dim 8 nd + 2 q4 + e2
          using H2 = std::conditional_t<std::is_same_v<T, __half>, __half2, __nv_bfloat162>;
#pragma unroll
          for (int nd = 0; nd < D / 8; ++nd) {
            const float2 f = to_float2(*reinterpret_cast<const H2*>(vr + 8 * nd + 2 * q4));
            o[nd][2 * hh] += p * f.x;
            o[nd][2 * hh + 1] += p * f.y;
          }
        }
      }
    }
    // KV union: each kept candidate outside its position's union of the other keys (bit 31
    // clear), counted once over the group's heads: a thread per (row, rank).
    if (G > 1) {
      __syncthreads();  // every row's kept list in place
      for (int idx = tid; idx < kBM * kFoldCap; idx += kThreads) {
        const int r = idx / kFoldCap, t = idx - r * kFoldCap;
        if (!rs.active[r] || t >= kept(r)) continue;
        const uint32_t y = fbuf[idx].y;
        if (y >> 31) continue;
        const int p = r / G;
        bool dup = false;
        for (int r2 = p * G; r2 < r && !dup; ++r2) {
          if (!rs.active[r2]) continue;
          const int kk2 = kept(r2);
          for (int t2 = 0; t2 < kk2 && !dup; ++t2) {
            const uint32_t y2 = fbuf[r2 * kFoldCap + t2].y;
            dup = (y2 >> 31) == 0 && (y2 & 0xffffu) == (y & 0xffffu);
          }
        }
        if (!dup) ++union_reads;
      }
    }
  }
  if (G > 1 && union_reads > 0) atomicAdd(&a.kv_reads[kvh], union_reads);
#if (CSA_TILED_PROFILE & 16) != 0
  {
    unsigned long long* st = g_tiled_stats;
#pragma unroll
    for (int off = 1; off <= 2; off <<= 1) {
      mg0 += __shfl_xor_sync(0xffffffffu, mg0, off);
      mg1 += __shfl_xor_sync(0xffffffffu, mg1, off);
    }
    if (q4 == 0) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int r = h == 0 ? cx.r0 : cx.r1;
        const unsigned mg = h == 0 ? mg0 : mg1;
        if (!(h == 0 ? sel0 : sel1)) continue;
        atomicAdd(&st[kStatRowsSelecting], 1ull);
        if (fold && rs.active[r] != 0) {
          atomicAdd(&st[kStatRowsFolded], 1ull);
          atomicAdd(&st[kStatFoldCandidates], static_cast<unsigned long long>(rs.cnt[r]));
          atomicAdd(&st[kStatFoldMargin], static_cast<unsigned long long>(mg));
          if (rs.cnt[r] + static_cast<int>(mg) > kFoldCap) atomicAdd(&st[kStatFoldOver], 1ull);
        } else {
          atomicAdd(&st[kStatRowsResolved], 1ull);
          atomicAdd(&st[kStatResolvedMargin], static_cast<unsigned long long>(mg));
          if (static_cast<int>(mg) > kFoldCap) atomicAdd(&st[kStatResolvedOver], 1ull);
        }
      }
    }
    if (tid == 0) {
      atomicAdd(&st[kStatBlocks], 1ull);
      atomicAdd(&st[kStatFoldBlocks], fold ? 1ull : 0ull);
      atomicAdd(&st[kStatHistPasses], static_cast<unsigned long long>(hist_passes));
      atomicAdd(&st[hist_passes <= 1   ? kStatPass1
                    : hist_passes == 2 ? kStatPass2
                                       : kStatPass3Plus],
                1ull);
      if (fold) {
        unsigned long long bits = 0;  // (the prefix bits of the block's folding rows)
        for (int r = 0; r < kBM; ++r) bits += rs.active[r] != 0 ? rs.pb[r] : 0;
        atomicAdd(&st[kStatFoldPrefixBits], bits);
      }
    }
    __threadfence();
    __syncthreads();
    if (tid == 0) {
      const unsigned total = gridDim.x * gridDim.y * gridDim.z;
      if (atomicAdd(&g_tiled_ticket, 1u) == total - 1) {
        __threadfence();
        printf("CSA_TILED_STATS T=%d S=%d H=%d Hkv=%d D=%d f32=%d", a.T, a.S, a.H, a.Hkv, D,
               kF32<T> ? 1 : 0);
        for (int i = 0; i < kStatCount; ++i) printf(" %llu", st[i]);
        printf("\n");
        for (int i = 0; i < kStatCount; ++i) st[i] = 0;
        g_tiled_ticket = 0;
      }
    }
  }
#endif

  // Normalise and store (rows lane / 4 and lane / 4 + 8 of the warp's 16).
  l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
  l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
  l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
  l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
  T* out = static_cast<T*>(a.out);
  const int rows[2] = {cx.r0, cx.r1}, poss[2] = {pos0, pos1};
  const float invs[2] = {1.0f / l0, 1.0f / l1};
#pragma unroll
  for (int h = 0; h < 2; ++h) {  // rows lane / 4 (o[*][0..1]) and lane / 4 + 8 (o[*][2..3])
    if (poss[h] < 0) continue;
    const float inv = invs[h];
    T* p = out +
           ((static_cast<int64_t>(b) * a.H + kvh * G + rows[h] % G) * a.T + t0 + rows[h] / G) * D;
    if constexpr (kF32<T>) {  // o[nd][2h + e] is dim (D / 8)(2 q4 + e) + nd (the P·V permutation)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        float* pe = p + (D / 8) * (2 * q4 + e);
#pragma unroll
        for (int n4 = 0; n4 < D / 32; ++n4)
          *reinterpret_cast<float4*>(pe + 4 * n4) =
              make_float4(o[4 * n4][2 * h + e] * inv, o[4 * n4 + 1][2 * h + e] * inv,
                          o[4 * n4 + 2][2 * h + e] * inv, o[4 * n4 + 3][2 * h + e] * inv);
      }
    } else {
#pragma unroll
      for (int nd = 0; nd < D / 8; ++nd)
        *reinterpret_cast<uint32_t*>(p + nd * 8 + 2 * q4) =
            pack2<T>(o[nd][2 * h] * inv, o[nd][2 * h + 1] * inv);
    }
  }
}

template <typename T, int D>
const char* launch(const TopKAttentionArgs& a, cudaStream_t stream) {
  constexpr int kSmem = Layout<T, D>::kBytes;
  cudaError_t e = cudaFuncSetAttribute(tiled_topk_kernel<T, D>,
                                       cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem);
  if (e != cudaSuccess) return cudaGetErrorString(e);
  const int G = a.H / a.Hkv, P = kBM / G;
  if (a.scratch == nullptr) return "the tiled kernel needs its scratch buffer";
  if constexpr (kF32<T>) {  // K and V split into the scratch buffer first
    const int64_t n = static_cast<int64_t>(a.B) * a.Hkv * a.S * (D / 4);
    split_kv_kernel<D><<<dim3(static_cast<unsigned>((n + 255) / 256), 2), 256, 0, stream>>>(
        a, static_cast<float*>(a.scratch));
  }
  const dim3 grid(static_cast<unsigned>((a.T + P - 1) / P), static_cast<unsigned>(a.Hkv),
                  static_cast<unsigned>(a.B));
  tiled_topk_kernel<T, D><<<grid, kThreads, kSmem, stream>>>(a, G, P);
  e = cudaGetLastError();
  return e == cudaSuccess ? nullptr : cudaGetErrorString(e);
}

// The launches of one element type (head dim 64 or 128), each defined in a translation unit of
// its own (fused_cuda_tiled_{f32,bf16,f16}.cu) so that nvcc builds the three in parallel.
const char* launch_f32(const TopKAttentionArgs& a, cudaStream_t stream);
const char* launch_bf16(const TopKAttentionArgs& a, cudaStream_t stream);
const char* launch_f16(const TopKAttentionArgs& a, cudaStream_t stream);

}  // namespace csa::cuda::tiled
