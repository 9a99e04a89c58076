#include "csa/attention/attention.h"
#include "support.h"

using namespace csa;

namespace {

// Naive reference: repeat K/V per query head, full scores, causal mask, softmax.
at::Tensor naive_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                           double scale, at::Tensor* probs_out = nullptr) {
  const int64_t H = q.size(1), Hkv = k.size(1), T = q.size(2), S = k.size(2);
  at::Tensor kr = k.repeat_interleave(H / Hkv, 1).to(at::kDouble);
  at::Tensor vr = v.repeat_interleave(H / Hkv, 1).to(at::kDouble);
  at::Tensor scores = at::matmul(q.to(at::kDouble), kr.transpose(2, 3)) * scale;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t s = 0; s < S; ++s)
      if (s > S - T + t) scores.select(2, t).select(2, s).fill_(-INFINITY);
  at::Tensor p = at::softmax(scores, -1);
  if (probs_out != nullptr) *probs_out = p;
  return at::matmul(p, vr);
}

struct Recorder : AttentionHook {
  std::vector<at::Tensor> probs;
  std::vector<int64_t> starts;
  bool active(int) const override { return true; }
  bool observes(int) const override { return true; }
  void observe(const AttentionView& w) override {
    probs.push_back(w.probs.clone());
    starts.push_back(w.q_pos0);
  }
};

}  // namespace

TEST_CASE("attention matches a naive reference for MHA and GQA, chunked or not", "[unit]") {
  at::manual_seed(1);
  for (int64_t hkv : {4, 2, 1}) {
    for (int64_t max_bytes : {int64_t(1) << 30, int64_t(2 * 4 * 11 * 4)}) {
      INFO("Hkv " << hkv << " max_score_bytes " << max_bytes);
      at::Tensor q = at::randn({2, 4, 11, 8}), k = at::randn({2, hkv, 11, 8}),
                 v = at::randn({2, hkv, 11, 8});
      AttentionOptions opts;
      opts.max_score_bytes = max_bytes;
      opts.allow_fused = false;
      Recorder rec;
      at::Tensor ref_probs;
      at::Tensor out = attend(q, k, v, 0.35, 0, &rec, opts);
      at::Tensor ref = naive_attention(q, k, v, 0.35, &ref_probs);
      CHECK_TENSOR_CLOSE(out, ref, 1e-5);
      at::Tensor probs = at::cat(rec.probs, 2);
      CHECK_TENSOR_CLOSE(probs, ref_probs, 1e-6);
      if (max_bytes < 1000) CHECK(rec.probs.size() > 1);  // really chunked
      CHECK(rec.starts.front() == 0);
      // The fused path (where libtorch has it) agrees with the explicit one.
      opts.allow_fused = true;
      CHECK_TENSOR_CLOSE(attend(q, k, v, 0.35, 0, nullptr, opts), ref, 1e-5);
    }
  }
}

TEST_CASE("queries after a KV prefix see the right causal window", "[unit]") {
  at::manual_seed(2);
  at::Tensor q = at::randn({1, 2, 3, 4}), k = at::randn({1, 2, 7, 4}), v = at::randn({1, 2, 7, 4});
  at::Tensor out = attend(q, k, v, 0.5, 0, nullptr, {});
  CHECK_TENSOR_CLOSE(out, naive_attention(q, k, v, 0.5), 1e-5);
}

TEST_CASE("a restricting hook changes exactly what its rule drops, on every path", "[unit]") {
  // A sink-only pattern (window 0 is not allowed by the factories, so build the rule by hand):
  // every query reads key 0 only.
  struct KeepFirstKey : AttentionHook {
    LayerRule r;
    KeepFirstKey() {
      r.kind = SparsityKind::kWindow;
      r.window = 0;
      r.sinks = 1;
    }
    bool active(int layer) const override { return layer == 1; }
    const LayerRule* rule(int) const override { return &r; }
  } hook;
  at::Tensor q = at::randn({1, 2, 5, 4}), k = at::randn({1, 2, 5, 4}), v = at::randn({1, 2, 5, 4});
  for (bool fused : {true, false}) {
    AttentionOptions o;
    o.allow_fused_cpu = fused;
    at::Tensor out = attend(q, k, v, 1.0, 1, &hook, o);
    // Every query reads only key 0: the output is v[0] for every row.
    CHECK_TENSOR_CLOSE(out, v.narrow(2, 0, 1).expand({1, 2, 5, 4}), 1e-6);
    // Inactive on layer 0: dense.
    CHECK_TENSOR_CLOSE(attend(q, k, v, 1.0, 0, &hook, o), naive_attention(q, k, v, 1.0), 1e-5);
  }
}

#include "csa/attention/fused_cpu.h"
#include "csa/attention/sparse_hook.h"
#include "csa/attention/spec.h"

TEST_CASE("the fused CPU kernel gives the explicit path's output and reads", "[unit]") {
  // Shapes cross the kernel's 64-row blocks, a KV prefix (T < S) and GQA groups; budgets cover
  // tiny, mid and full-context heads; top-p covers masses that keep one key up to all keys;
  // schedules whose budgets change with the query position; window and strided patterns.
  at::manual_seed(7);
  struct Case {
    int64_t B, H, Hkv, T, S;
  };
  for (Case c : {Case{2, 4, 2, 150, 150}, Case{1, 6, 2, 70, 200}, Case{3, 3, 3, 1, 90},
                 Case{1, 4, 1, 129, 129}}) {
    at::Tensor q = at::randn({c.B, c.H, c.T, 16}), k = at::randn({c.B, c.Hkv, c.S, 16}),
               v = at::randn({c.B, c.Hkv, c.S, 16});
    // Integer-valued scores make ties common, so the tie rule is exercised too.
    at::Tensor qt = q.round(), kt = k.round();
    std::vector<int64_t> ks;
    std::vector<double> ps;
    for (int64_t h = 0; h < c.H; ++h) {
      ks.push_back(std::vector<int64_t>{1, 3, 17, 64, 1000, 40}[static_cast<size_t>(h % 6)]);
      ps.push_back(std::vector<double>{0.5, 0.9, 0.99, 1.0, 0.2, 0.7}[static_cast<size_t>(h % 6)]);
    }
    // Budgets by position band: bands start at 0, 8, 40 and 100.
    BudgetSchedule banded;
    banded.band_start = {0, 8, 40, 100};
    for (int64_t h = 0; h < c.H; ++h)
      banded.k.push_back(
          std::vector<std::vector<int64_t>>{{1, 2, 5, 9},
                                            {8, 3, 30, 2},
                                            {4, 4, 4, 4},
                                            {1000, 1, 1000, 1}}[static_cast<size_t>(h % 4)]);
    for (int kind = 0; kind < 6; ++kind) {
      for (bool ties : {false, true}) {
        INFO("case B" << c.B << " H" << c.H << " Hkv" << c.Hkv << " T" << c.T << " S" << c.S
                      << " kind " << kind << " ties " << ties);
        SparsitySpec spec = SparsitySpec::dense();
        if (kind == 1) spec = SparsitySpec::top_k(std::vector<std::vector<int64_t>>{ks}, "k");
        if (kind == 2) spec = SparsitySpec::top_p(1, c.H, 0.5), spec.p = {ps};
        if (kind == 3) spec = SparsitySpec::local_window(5, 2);
        if (kind == 4) spec = SparsitySpec::strided(7, 3, 1);
        if (kind == 5) spec = SparsitySpec::top_k(std::vector<BudgetSchedule>{banded}, "banded");
        const at::Tensor& qq = ties ? qt : q;
        const at::Tensor& kk = ties ? kt : k;
        SparseAttentionHook explicit_hook(spec, 1, c.H, c.Hkv, 100000);
        SparseAttentionHook fused_hook(spec, 1, c.H, c.Hkv, 100000);
        AttentionOptions slow;
        slow.allow_fused = false;
        slow.allow_fused_cpu = false;
        slow.max_score_bytes = 4096;  // chunked too
        AttentionOptions fast;
        fast.allow_fused = false;
        at::Tensor ref = attend(qq, kk, v, 0.3, 0, kind == 0 ? nullptr : &explicit_hook, slow);
        at::Tensor got = attend(qq, kk, v, 0.3, 0, kind == 0 ? nullptr : &fused_hook, fast);
        CHECK_TENSOR_CLOSE(got, ref, 1e-5);
        if (kind != 0) {
          CHECK(fused_hook.tally().q_sparse == explicit_hook.tally().q_sparse);
          CHECK(fused_hook.tally().kv_sparse == explicit_hook.tally().kv_sparse);
        }
        if (kind == 1 || kind == 5) {
          // Hand count of query-side reads: sum over rows of min(k(i), i + 1).
          double expect = 0;
          for (int64_t h = 0; h < c.H; ++h)
            for (int64_t t = 0; t < c.T; ++t) {
              const int64_t i = c.S - c.T + t;
              const int64_t kh = kind == 1 ? ks[static_cast<size_t>(h)] : banded.budget(h, i);
              expect += static_cast<double>(c.B * std::min(kh, i + 1));
            }
          CHECK(fused_hook.tally().q_sparse_total() == expect);
        }
      }
    }
  }
}
