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
  void observe_probs(const ScoreBlock& w, const at::Tensor& p) override {
    probs.push_back(p.clone());
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

TEST_CASE("a masking hook changes exactly what it masks", "[unit]") {
  struct KeepFirstKey : AttentionHook {
    bool active(int layer) const override { return layer == 1; }
    void mask_scores(const ScoreBlock&, at::Tensor& scores) override {
      scores.narrow(-1, 1, scores.size(-1) - 1).fill_(-INFINITY);
    }
  } hook;
  at::Tensor q = at::randn({1, 2, 5, 4}), k = at::randn({1, 2, 5, 4}), v = at::randn({1, 2, 5, 4});
  at::Tensor out = attend(q, k, v, 1.0, 1, &hook, {});
  // Every query reads only key 0: the output is v[0] for every row.
  CHECK_TENSOR_CLOSE(out, v.narrow(2, 0, 1).expand({1, 2, 5, 4}), 1e-6);
  // Inactive on layer 0: dense.
  CHECK_TENSOR_CLOSE(attend(q, k, v, 1.0, 0, &hook, {}), naive_attention(q, k, v, 1.0), 1e-5);
}
