#include "csa/attention/fused_cpu.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <limits>
#include <mutex>

#include "csa/attention/cpu_kernels.h"
#include "csa/attention/select.h"
#include "csa/core/error.h"
#include "csa/core/profile.h"

namespace csa {
namespace {

constexpr int64_t kBlockRows = 64;
// A block whose kept keys number less than 1/kGatherRatio of its causal keys does the softmax and
// A·V over the kept keys only (gathered rows of V); otherwise one product over all of the block's
// keys, the dropped ones weighted 0. Measured at ctx 2048 (csa-bench, top-k 128 and 512): 2 is
// slower, 4 to 16 about the same.
constexpr int64_t kGatherRatio = 4;
// A score-rule row that keeps at least 1/kMaskRatio of its keys is masked in place (select.h's
// select_row_in_place: dropped scores set to -inf) rather than listed: its softmax, the block's
// A·V product and the KV union then run over the row as dense rows do.
constexpr int64_t kMaskRatio = kGatherRatio;

struct Shapes {
  int64_t B, H, Hkv, G, T, S, D, blocks;
};

// A float32 [B, heads, len, D] tensor with unit stride along D (q, k, v may be views of the fused
// qkv projection: no copy).
struct Rows {
  const float* p;
  int64_t sb, sh, st;
  explicit Rows(const at::Tensor& x)
      : p(x.data_ptr<float>()), sb(x.stride(0)), sh(x.stride(1)), st(x.stride(2)) {}
  const float* at(int64_t b, int64_t h, int64_t t) const { return p + b * sb + h * sh + t * st; }
};

// The output, [B, T, H, D] contiguous (returned as a [B, H, T, D] view, so the decoder's
// transpose back to [B, T, H·D] is free).
struct OutRows {
  float* p;
  int64_t T, H, D;
  float* at(int64_t b, int64_t h, int64_t t) const { return p + ((b * T + t) * H + h) * D; }
};

// One task: KV head g of batch row b, query rows [t0, t0 + rows) of all G query heads of the
// group. Row r sits at position pos0 + r and reads keys [0, pos0 + r]; nmax = pos0 + rows.
struct Block {
  int64_t b, g, t0, rows, pos0, nmax;
};

Block block_of(const Shapes& sh, int64_t task) {
  // Largest blocks first (tasks are handed out in order): the last row block is the costliest.
  const int64_t bi = sh.blocks - 1 - task / (sh.B * sh.Hkv);
  const int64_t bg = task % (sh.B * sh.Hkv);
  Block blk{};
  blk.b = bg / sh.Hkv;
  blk.g = bg % sh.Hkv;
  blk.t0 = bi * kBlockRows;
  blk.rows = std::min(kBlockRows, sh.T - blk.t0);
  blk.pos0 = sh.S - sh.T + blk.t0;
  blk.nmax = blk.pos0 + blk.rows;
  return blk;
}

// Per thread, reused across blocks and calls (OpenMP's threads persist): no allocation per block.
struct Scratch {
  std::vector<float> q;      // [G * rows, D] the block's queries, packed
  std::vector<float> p;      // [G * rows, nmax] scores, then probabilities
  std::vector<float> o;      // [G * rows, D] A·V before normalisation
  std::vector<float> inv_z;  // [G * rows] 1 / softmax denominator
  std::vector<float> w;      // gathered weights of one row
  SelectScratch select;
  std::vector<std::vector<int32_t>> kept;  // [G * rows] kept keys (descending) of listed rows
  std::vector<RowKeep> keep;               // [G * rows] how select_row_in_place left the row
  std::vector<int64_t> stamp;              // [S] KV-union marks
  std::vector<float> any_kept;             // [S] KV union of rows with masked heads (> -inf)
  int64_t stamp_id = 0;
  int64_t sparse_reads = 0, dense_reads = 0;  // this block's kept and causal keys
};

Scratch& thread_scratch() {
  thread_local Scratch s;
  return s;
}

// Keys [lo, hi) that a pattern rule may keep for some row of the block and that the block's
// products compute: the sinks and the band of the last `window` keys. Strided keys outside them
// are scored one by one after selection (patterns select without reading scores).
struct KeyRanges {
  int64_t sinks_hi, band_lo;  // [0, sinks_hi) and [band_lo, nmax)
  bool covers(int64_t j) const { return j < sinks_hi || j >= band_lo; }
};

KeyRanges key_ranges(const LayerRule* rule, const Block& blk) {
  if (rule == nullptr ||
      (rule->kind != SparsityKind::kWindow && rule->kind != SparsityKind::kStrided))
    return {0, 0};
  const int64_t band_lo = std::clamp<int64_t>(blk.pos0 - rule->window + 1, 0, blk.nmax);
  return {std::min(rule->sinks, band_lo), band_lo};
}

// Phase 1: p[i, j] = scale · q_i·k_j for the block's G·rows queries and keys in `kr`, as one
// product per key range (row i = gi * rows + r; keys past a row's causal end are computed too
// and ignored).
void block_scores(const Rows& q, const Rows& k, float scale, const Shapes& sh, const Block& blk,
                  const KeyRanges& kr, Scratch& st) {
  CSA_PROFILE_SCOPE("attention/qk");
  const int64_t M = sh.G * blk.rows, D = sh.D, ld = blk.nmax;
  for (int64_t gi = 0; gi < sh.G; ++gi)
    for (int64_t r = 0; r < blk.rows; ++r)
      std::memcpy(&st.q[static_cast<size_t>((gi * blk.rows + r) * D)],
                  q.at(blk.b, blk.g * sh.G + gi, blk.t0 + r), static_cast<size_t>(D) * 4);
  const float* kp = k.at(blk.b, blk.g, 0);
  auto product = [&](int64_t lo, int64_t hi) {
    if (hi > lo)
      cpu::gemm_nt(M, hi - lo, D, scale, st.q.data(), D, kp + lo * k.st, k.st, st.p.data() + lo,
                   ld);
  };
  product(0, kr.sinks_hi);
  product(kr.band_lo, blk.nmax);
}

// Phase 2: each row's kept keys through select_row_in_place (select.h: the explicit path's rule;
// rows keeping most keys masked in place, others listed), the scores of kept keys that phase 1
// skipped, and the reads.
void block_select(const LayerRule* rule, const Rows& q, const Rows& k, float scale,
                  const Shapes& sh, const Block& blk, const KeyRanges& kr, Scratch& st,
                  std::vector<double>& q_reads) {
  CSA_PROFILE_SCOPE("attention/select");
  st.sparse_reads = st.dense_reads = 0;
  for (int64_t gi = 0; gi < sh.G; ++gi) {
    const int64_t h = blk.g * sh.G + gi;
    int64_t head_reads = 0;
    for (int64_t r = 0; r < blk.rows; ++r) {
      const auto i = static_cast<size_t>(gi * blk.rows + r);
      const int64_t n = blk.pos0 + r + 1;
      float* s = st.p.data() + static_cast<int64_t>(i) * blk.nmax;
      auto& idx = st.kept[i];
      const RowSelection sel = rule == nullptr ? RowSelection{RowKeep::kAll, n}
                                               : select_row_in_place(*rule, h, blk.pos0 + r, s, n,
                                                                     kMaskRatio, st.select, idx);
      st.keep[i] = sel.keep;
      const bool all = sel.keep == RowKeep::kAll;  // patterns are listed or all, never masked
      st.dense_reads += n;
      st.sparse_reads += sel.count;
      head_reads += sel.count;
      if (kr.band_lo > kr.sinks_hi) {  // a pattern: score the kept keys between the ranges
        const float* qi = q.at(blk.b, h, blk.t0 + r);
        auto score = [&](int64_t j) {
          float acc = 0;
          const float* kj = k.at(blk.b, blk.g, j);
          for (int64_t d = 0; d < sh.D; ++d) acc += qi[d] * kj[d];
          s[j] = scale * acc;
        };
        if (all) {
          for (int64_t j = kr.sinks_hi; j < std::min(kr.band_lo, n); ++j) score(j);
        } else {
          for (int32_t j : idx)
            if (!kr.covers(j)) score(j);
        }
      }
    }
    q_reads[static_cast<size_t>(h)] += static_cast<double>(head_reads);
  }
}

// Phases 3 and 4 for a block that keeps few keys: per row, the softmax over the kept keys and
// A·V as a sum of gathered rows of V, written to `out`.
void block_gathered(const Rows& v, const Shapes& sh, const Block& blk, Scratch& st,
                    const OutRows& out) {
  CSA_PROFILE_SCOPE("attention/softmax_pv_gathered");
  const float* vp = v.at(blk.b, blk.g, 0);
  for (int64_t gi = 0; gi < sh.G; ++gi)
    for (int64_t r = 0; r < blk.rows; ++r) {
      const auto i = static_cast<size_t>(gi * blk.rows + r);
      const int64_t n = blk.pos0 + r + 1;
      const float* s = st.p.data() + static_cast<int64_t>(i) * blk.nmax;
      const auto& idx = st.kept[i];
      const bool all = st.keep[i] != RowKeep::kListed;  // masked rows: exp(-inf) weighs 0
      const int64_t m = all ? n : static_cast<int64_t>(idx.size());
      st.w.resize(static_cast<size_t>(m));
      if (all) {
        std::copy(s, s + n, st.w.begin());
      } else {
        for (int64_t a = 0; a < m; ++a)
          st.w[static_cast<size_t>(a)] = s[idx[static_cast<size_t>(a)]];
      }
      const float z = cpu::exp_shifted(st.w.data(), cpu::max_of(st.w.data(), m), st.w.data(), m);
      float* o = out.at(blk.b, blk.g * sh.G + gi, blk.t0 + r);
      cpu::weighted_rows(o, vp, v.st, all ? nullptr : idx.data(), st.w.data(), m, sh.D);
      cpu::scale(o, 1.0f / z, sh.D);
    }
}

// Phase 3 for a block that keeps many keys: each row of p becomes its unnormalised
// probabilities over [0, nmax) (0 past the causal end and at dropped keys).
void block_softmax(const Shapes& sh, const Block& blk, Scratch& st) {
  CSA_PROFILE_SCOPE("attention/softmax");
  for (int64_t i = 0; i < sh.G * blk.rows; ++i) {
    const int64_t n = blk.pos0 + i % blk.rows + 1;
    float* s = st.p.data() + i * blk.nmax;
    float z;
    if (st.keep[static_cast<size_t>(i)] != RowKeep::kListed) {  // masked rows: exp(-inf) = 0
      z = cpu::exp_shifted(s, cpu::max_of(s, n), s, n);
      std::fill(s + n, s + blk.nmax, 0.0f);
    } else {
      const auto& idx = st.kept[static_cast<size_t>(i)];
      const auto m = static_cast<int64_t>(idx.size());
      st.w.resize(idx.size());
      for (int64_t a = 0; a < m; ++a) st.w[static_cast<size_t>(a)] = s[idx[static_cast<size_t>(a)]];
      z = cpu::exp_shifted(st.w.data(), cpu::max_of(st.w.data(), m), st.w.data(), m);
      std::fill(s, s + blk.nmax, 0.0f);
      for (int64_t a = 0; a < m; ++a) s[idx[static_cast<size_t>(a)]] = st.w[static_cast<size_t>(a)];
    }
    st.inv_z[static_cast<size_t>(i)] = 1.0f / z;
  }
}

// Phase 4 for such a block: o = p · V for the whole group (one product), normalised into `out`.
void block_values(const Rows& v, const Shapes& sh, const Block& blk, Scratch& st,
                  const OutRows& out) {
  CSA_PROFILE_SCOPE("attention/pv");
  const int64_t M = sh.G * blk.rows, D = sh.D;
  cpu::gemm_nn(M, D, blk.nmax, st.p.data(), blk.nmax, v.at(blk.b, blk.g, 0), v.st, st.o.data(), D);
  for (int64_t gi = 0; gi < sh.G; ++gi)
    for (int64_t r = 0; r < blk.rows; ++r) {
      const int64_t i = gi * blk.rows + r;
      float* o = out.at(blk.b, blk.g * sh.G + gi, blk.t0 + r);
      const float* src = st.o.data() + i * D;
      const float a = st.inv_z[static_cast<size_t>(i)];
      for (int64_t d = 0; d < D; ++d) o[d] = src[d] * a;
    }
}

// Phase 5 (run before the softmax overwrites the masked rows' -inf): KV-side reads, per query
// row the union of the keys its group's heads kept. Listed rows alone through stamps; with
// masked rows, a running max over the group (-inf where no head kept the key) that the listed
// rows' keys set to 0, then a count of the keys above -inf.
void block_kv_reads(const Shapes& sh, const Block& blk, Scratch& st,
                    std::vector<double>& kv_reads) {
  CSA_PROFILE_SCOPE("attention/reads");
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  for (int64_t r = 0; r < blk.rows; ++r) {
    const int64_t n = blk.pos0 + r + 1;
    bool any_all = false, any_masked = false;
    for (int64_t gi = 0; gi < sh.G; ++gi) {
      const RowKeep keep = st.keep[static_cast<size_t>(gi * blk.rows + r)];
      any_all |= keep == RowKeep::kAll;
      any_masked |= keep == RowKeep::kMasked;
    }
    if (any_all) {
      kv_reads[static_cast<size_t>(blk.g)] += static_cast<double>(n);
      continue;
    }
    int64_t uni = 0;
    if (any_masked) {
      float* u = st.any_kept.data();
      std::fill(u, u + n, kNegInf);
      for (int64_t gi = 0; gi < sh.G; ++gi) {
        const auto i = static_cast<size_t>(gi * blk.rows + r);
        if (st.keep[i] == RowKeep::kMasked) {
          const float* s = st.p.data() + static_cast<int64_t>(i) * blk.nmax;
          for (int64_t j = 0; j < n; ++j) u[j] = std::max(u[j], s[j]);
        } else {
          for (int32_t j : st.kept[i]) u[j] = 0.0f;
        }
      }
      for (int64_t j = 0; j < n; ++j) uni += u[j] > kNegInf;
    } else {
      const int64_t id = ++st.stamp_id;
      for (int64_t gi = 0; gi < sh.G; ++gi)
        for (int32_t j : st.kept[static_cast<size_t>(gi * blk.rows + r)])
          if (st.stamp[static_cast<size_t>(j)] != id) {
            st.stamp[static_cast<size_t>(j)] = id;
            ++uni;
          }
    }
    kv_reads[static_cast<size_t>(blk.g)] += static_cast<double>(uni);
  }
}

void run_block(const Rows& q, const Rows& k, const Rows& v, const OutRows& out, float scale,
               const LayerRule* rule, const Shapes& sh, int64_t task, Scratch& st,
               std::vector<double>& q_reads, std::vector<double>& kv_reads) {
  const Block blk = block_of(sh, task);
  const KeyRanges kr = key_ranges(rule, blk);
  block_scores(q, k, scale, sh, blk, kr, st);
  block_select(rule, q, k, scale, sh, blk, kr, st, q_reads);
  if (rule != nullptr) block_kv_reads(sh, blk, st, kv_reads);
  if (st.sparse_reads * kGatherRatio < st.dense_reads) {
    block_gathered(v, sh, blk, st, out);
  } else {
    block_softmax(sh, blk, st);
    block_values(v, sh, blk, st, out);
  }
}

// A float32 CPU tensor whose last dimension has unit stride (a copy only when it has not).
at::Tensor unit_stride_rows(const at::Tensor& x) {
  return x.stride(3) == 1 || x.size(3) == 1 ? x : x.contiguous();
}

}  // namespace

at::Tensor fused_attention_cpu(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                               double scale, const LayerRule* rule, ReadsCount* reads) {
  CSA_CHECK(q.is_cpu() && q.scalar_type() == at::kFloat && k.scalar_type() == at::kFloat &&
                v.scalar_type() == at::kFloat,
            "fused_attention_cpu needs float32 CPU tensors");
  Shapes sh{};
  sh.B = q.size(0), sh.H = q.size(1), sh.T = q.size(2), sh.D = q.size(3);
  sh.Hkv = k.size(1), sh.S = k.size(2);
  CSA_CHECK(sh.H % sh.Hkv == 0 && sh.S >= sh.T, "attention shapes disagree");
  sh.G = sh.H / sh.Hkv;
  sh.blocks = (sh.T + kBlockRows - 1) / kBlockRows;
  const at::Tensor qs = unit_stride_rows(q), ks = unit_stride_rows(k), vs = unit_stride_rows(v);
  const Rows qr(qs), kr(ks), vr(vs);
  at::Tensor out = at::empty({sh.B, sh.T, sh.H, sh.D}, q.options());  // [B, T, H, D]
  const OutRows outr{out.data_ptr<float>(), sh.T, sh.H, sh.D};
  const int64_t tasks = sh.B * sh.Hkv * sh.blocks;

  std::atomic<int64_t> next{0};
  std::mutex merge;
  std::vector<double> q_reads(static_cast<size_t>(sh.H), 0.0),
      kv_reads(static_cast<size_t>(sh.Hkv), 0.0);
  // One task list, one worker per thread, each taking the next task: blocks differ in cost (the
  // causal triangle), so a static split would leave a thread idle. With one worker the loop runs
  // on the calling thread, outside any parallel region (OpenBLAS then uses the threads it has;
  // inside a region of two or more it runs single-threaded).
  const int64_t workers = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), tasks));
  at::parallel_for(0, workers, 1, [&](int64_t, int64_t) {
    Scratch& st = thread_scratch();
    const int64_t rows = std::min(kBlockRows, sh.T), M = sh.G * rows;
    st.q.resize(static_cast<size_t>(M * sh.D));
    st.p.resize(static_cast<size_t>(M * sh.S));
    st.o.resize(static_cast<size_t>(M * sh.D));
    st.inv_z.resize(static_cast<size_t>(M));
    st.kept.resize(static_cast<size_t>(M));
    st.keep.resize(static_cast<size_t>(M));
    if (static_cast<int64_t>(st.stamp.size()) < sh.S) st.stamp.resize(static_cast<size_t>(sh.S), 0);
    if (static_cast<int64_t>(st.any_kept.size()) < sh.S)
      st.any_kept.resize(static_cast<size_t>(sh.S));
    std::vector<double> my_q(static_cast<size_t>(sh.H), 0.0),
        my_kv(static_cast<size_t>(sh.Hkv), 0.0);
    for (int64_t t = next++; t < tasks; t = next++)
      run_block(qr, kr, vr, outr, static_cast<float>(scale), rule, sh, t, st, my_q, my_kv);
    std::lock_guard<std::mutex> lock(merge);
    for (int64_t h = 0; h < sh.H; ++h)
      q_reads[static_cast<size_t>(h)] += my_q[static_cast<size_t>(h)];
    for (int64_t g = 0; g < sh.Hkv; ++g)
      kv_reads[static_cast<size_t>(g)] += my_kv[static_cast<size_t>(g)];
  });
  if (reads != nullptr) {
    reads->q = std::move(q_reads);
    reads->kv = std::move(kv_reads);
  }
  return out.permute({0, 2, 1, 3});  // [B, H, T, D]
}

}  // namespace csa
