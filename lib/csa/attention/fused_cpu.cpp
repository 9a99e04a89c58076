#include "csa/attention/fused_cpu.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <functional>
#include <limits>
#include <mutex>

#include "csa/attention/select.h"
#include "csa/core/error.h"

namespace csa {
namespace {

constexpr int64_t kBlockRows = 64;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// out[0..D) += w * v[0..D). Compiled twice on x86-64 (AVX2+FMA and baseline), picked at load time:
// Debian builds for the baseline ISA, and this loop is the gathered half of A·V.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
void axpy(float* __restrict out, const float* __restrict v, float w, int64_t D) {
  for (int64_t d = 0; d < D; ++d) out[d] += w * v[d];
}

// out[j] = scale * q·k_j for j < n (k rows of length D). Own loop rather than BLAS: this runs
// inside the kernel's parallel region, where OpenBLAS (OpenMP) calls from several threads at once
// were measured 10-40x slower than one thread (lock and spin contention).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
void dot_keys(const float* __restrict q, const float* __restrict k, int64_t n, int64_t D,
              float scale, float* __restrict out) {
  const int64_t D8 = D / 8 * 8;
  for (int64_t j = 0; j < n; ++j) {
    const float* kj = k + j * D;
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t d = 0; d < D8; d += 8)
      for (int u = 0; u < 8; ++u) acc[u] += q[d + u] * kj[d + u];
    float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (int64_t d = D8; d < D; ++d) s += q[d] * kj[d];
    out[j] = s * scale;
  }
}

struct Shapes {
  int64_t B, H, Hkv, G, T, S, D, blocks;
};

struct ThreadState {
  at::Tensor scores;                       // [kBlockRows * S] float, reused per block
  SelectScratch select;                    // selection
  std::vector<std::vector<int32_t>> kept;  // [G * rows] kept keys of sparse rows
  std::vector<uint8_t> all_keys;           // [G * rows] 1 when the row reads all its keys
  std::vector<int64_t> stamp;              // [S] KV-union marks
  int64_t stamp_id = 0;
  std::vector<double> q_reads, kv_reads;  // [H], [Hkv]
};

void run_block(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, at::Tensor& out,
               double scale, const LayerRule* rule, const Shapes& sh, int64_t task,
               ThreadState& st) {
  // Largest blocks first (tasks are handed out in order): the last row block is the costliest.
  const int64_t block = sh.blocks - 1 - task / (sh.B * sh.Hkv);
  const int64_t bg = task % (sh.B * sh.Hkv);
  const int64_t b = bg / sh.Hkv, g = bg % sh.Hkv;
  const int64_t t0 = block * kBlockRows, rows = std::min(kBlockRows, sh.T - t0);
  const int64_t pos0 = sh.S - sh.T + t0;  // absolute position of the block's first query
  const int64_t nmax = pos0 + rows;       // keys any row of the block may read
  const float* kptr = k.data_ptr<float>() + (b * sh.Hkv + g) * sh.S * sh.D;  // [S, D]
  const float* vptr = v.data_ptr<float>() + (b * sh.Hkv + g) * sh.S * sh.D;
  st.kept.resize(static_cast<size_t>(sh.G * rows));
  st.all_keys.assign(static_cast<size_t>(sh.G * rows), 0);

  for (int64_t gi = 0; gi < sh.G; ++gi) {
    const int64_t h = g * sh.G + gi;
    // The thread's score buffer, [rows, nmax]: no allocation per block (freeing large blocks
    // from several threads at once costs page faults and TLB shootdowns).
    float* sp = st.scores.data_ptr<float>();
    const int64_t ld = nmax;
    const float* qptr = q.data_ptr<float>() + ((b * sh.H + h) * sh.T + t0) * sh.D;
    for (int64_t r = 0; r < rows; ++r)  // causal keys only
      dot_keys(qptr + r * sh.D, kptr, pos0 + r + 1, sh.D, static_cast<float>(scale), sp + r * ld);

    int64_t sparse_reads = 0, dense_reads = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t n = pos0 + r + 1;
      auto& idx = st.kept[static_cast<size_t>(gi * rows + r)];
      const bool all =
          rule == nullptr || select_row(*rule, h, pos0 + r, sp + r * ld, n, st.select, idx);
      const int64_t keep = all ? n : static_cast<int64_t>(idx.size());
      dense_reads += n;
      sparse_reads += keep;
      st.q_reads[static_cast<size_t>(h)] += static_cast<double>(keep);
      st.all_keys[static_cast<size_t>(gi * rows + r)] = all ? 1 : 0;
    }

    float* op = out[b][h].narrow(0, t0, rows).data_ptr<float>();
    if (sparse_reads * 3 < dense_reads) {
      // Sparse block: softmax and A·V over the kept keys, gathering rows of V.
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t n = pos0 + r + 1;
        const float* s = sp + r * ld;
        float* o = op + r * sh.D;
        std::fill(o, o + sh.D, 0.0f);
        const auto& idx = st.kept[static_cast<size_t>(gi * rows + r)];
        const bool all = st.all_keys[static_cast<size_t>(gi * rows + r)] != 0;
        float m = kNegInf;
        if (all) {
          for (int64_t j = 0; j < n; ++j) m = std::max(m, s[j]);
        } else {
          for (int32_t j : idx) m = std::max(m, s[j]);
        }
        double z = 0;
        auto add = [&](int64_t j) {
          const float w = std::exp(s[j] - m);
          z += w;
          axpy(o, vptr + j * sh.D, w, sh.D);
        };
        if (all) {
          for (int64_t j = 0; j < n; ++j) add(j);
        } else {
          for (int32_t j : idx) add(j);
        }
        const auto inv = static_cast<float>(1.0 / z);
        for (int64_t d = 0; d < sh.D; ++d) o[d] *= inv;
      }
    } else {
      // Dense-ish block: mask to the kept keys, row softmax, then A·V row by row.
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t n = pos0 + r + 1;
        float* s = sp + r * ld;
        std::fill(s + n, s + nmax, kNegInf);
        if (st.all_keys[static_cast<size_t>(gi * rows + r)] != 0) continue;
        mask_except(s, n, st.kept[static_cast<size_t>(gi * rows + r)], st.select.values);
      }
      for (int64_t r = 0; r < rows; ++r) softmax_row(sp + r * ld, sp + r * ld, pos0 + r + 1);
      const float* pp = sp;
      for (int64_t r = 0; r < rows; ++r) {
        float* o = op + r * sh.D;
        std::fill(o, o + sh.D, 0.0f);
        const float* prow = pp + r * nmax;
        for (int64_t j = 0; j <= pos0 + r; ++j)
          if (prow[j] != 0.0f) axpy(o, vptr + j * sh.D, prow[j], sh.D);
      }
    }
  }

  // KV-side reads: per query row, the union of the keys its group's heads kept.
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t n = pos0 + r + 1;
    bool any_all = false;
    for (int64_t gi = 0; gi < sh.G; ++gi)
      any_all |= st.all_keys[static_cast<size_t>(gi * rows + r)] != 0;
    if (any_all) {
      st.kv_reads[static_cast<size_t>(g)] += static_cast<double>(n);
      continue;
    }
    const int64_t id = ++st.stamp_id;
    int64_t uni = 0;
    for (int64_t gi = 0; gi < sh.G; ++gi)
      for (int32_t j : st.kept[static_cast<size_t>(gi * rows + r)])
        if (st.stamp[static_cast<size_t>(j)] != id) {
          st.stamp[static_cast<size_t>(j)] = id;
          ++uni;
        }
    st.kv_reads[static_cast<size_t>(g)] += static_cast<double>(uni);
  }
}

}  // namespace

at::Tensor fused_attention_cpu(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                               double scale, const LayerRule* rule, ReadsCount* reads) {
  CSA_CHECK(q.is_cpu() && q.scalar_type() == at::kFloat && k.scalar_type() == at::kFloat &&
                v.scalar_type() == at::kFloat,
            "fused_attention_cpu needs float32 CPU tensors");
  at::Tensor qc = q.contiguous(), kc = k.contiguous(), vc = v.contiguous();
  Shapes sh{};
  sh.B = q.size(0), sh.H = q.size(1), sh.T = q.size(2), sh.D = q.size(3);
  sh.Hkv = k.size(1), sh.S = k.size(2);
  CSA_CHECK(sh.H % sh.Hkv == 0 && sh.S >= sh.T, "attention shapes disagree");
  sh.G = sh.H / sh.Hkv;
  sh.blocks = (sh.T + kBlockRows - 1) / kBlockRows;
  at::Tensor out = at::empty({sh.B, sh.H, sh.T, sh.D}, q.options());
  const int64_t tasks = sh.B * sh.Hkv * sh.blocks;

  std::atomic<int64_t> next{0};
  std::mutex merge;
  std::vector<double> q_reads(static_cast<size_t>(sh.H), 0.0),
      kv_reads(static_cast<size_t>(sh.Hkv), 0.0);
  const int64_t workers = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), tasks));
  at::parallel_for(0, workers, 1, [&](int64_t, int64_t) {
    ThreadState st;
    st.scores = at::empty({kBlockRows * sh.S}, q.options());
    st.stamp.assign(static_cast<size_t>(sh.S), 0);
    st.q_reads.assign(static_cast<size_t>(sh.H), 0.0);
    st.kv_reads.assign(static_cast<size_t>(sh.Hkv), 0.0);
    for (int64_t t = next++; t < tasks; t = next++)
      run_block(qc, kc, vc, out, scale, rule, sh, t, st);
    std::lock_guard<std::mutex> lock(merge);
    for (int64_t h = 0; h < sh.H; ++h)
      q_reads[static_cast<size_t>(h)] += st.q_reads[static_cast<size_t>(h)];
    for (int64_t g = 0; g < sh.Hkv; ++g)
      kv_reads[static_cast<size_t>(g)] += st.kv_reads[static_cast<size_t>(g)];
  });
  if (reads != nullptr) {
    reads->q = std::move(q_reads);
    reads->kv = std::move(kv_reads);
  }
  return out;
}

}  // namespace csa
