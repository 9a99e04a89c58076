// The hook interface of csa's one attention path (STYLE.md §4). Dense attention, the statistics
// observer used by calibration, top-k / top-p / pattern masks and reads accounting all plug in
// here; no family has its own attention code.
#pragma once

#include <ATen/ATen.h>

#include <vector>

namespace csa {

// Where a block of attention scores sits. Scores are [B, H, Tq, S]: batch, query head, query
// rows of this chunk, keys. Query row r of the chunk is at absolute position q_pos0 + r and
// may attend keys 0 .. q_pos0 + r (causal); the other entries are already -inf.
struct ScoreBlock {
  int layer = 0;
  int64_t q_pos0 = 0;
};

// A per-query selection rule that a fused kernel can apply row by row without materialising the
// score block (attention.cpp picks the fused CPU kernel when a hook offers one). Per query head of
// one layer: keep the top-k keys by score, or the smallest top set reaching probability mass p.
struct RowRule {
  enum class Kind { kNone, kTopK, kTopP };
  Kind kind = Kind::kNone;
  const std::vector<int64_t>* k = nullptr;  // [H] budgets when kTopK
  const std::vector<double>* p = nullptr;   // [H] masses when kTopP
};

// Keys read by one attention call, for reads accounting: per query head [H] and per KV head
// [Hkv] (the union over the query heads sharing it), summed over batch and query rows.
struct ReadsCount {
  std::vector<double> q;
  std::vector<double> kv;
};

class AttentionHook {
 public:
  virtual ~AttentionHook() = default;
  // True when this hook needs the explicit score / probability path for `layer`
  // (false lets the attention use its fused dense kernel).
  virtual bool active(int layer) const = 0;
  // May mask `scores` in place: set keys a query must not read to -inf. Scores are float32,
  // already scaled by the model's attention scale, causal entries already -inf.
  virtual void mask_scores(const ScoreBlock& where, at::Tensor& scores) {
    (void)where;
    (void)scores;
  }
  // Sees the probabilities [B, H, Tq, S] after the softmax of the masked scores.
  virtual void observe_probs(const ScoreBlock& where, const at::Tensor& probs) {
    (void)where;
    (void)probs;
  }
  // A rule equivalent to mask_scores for `layer` that a fused kernel may apply instead of the
  // explicit path (then mask_scores/observe_probs are not called and the kernel reports the
  // keys it read through count_reads). kNone: this hook needs the explicit path.
  virtual RowRule row_rule(int layer) const {
    (void)layer;
    return {};
  }
  virtual void count_reads(int layer, const ReadsCount& reads) {
    (void)layer;
    (void)reads;
  }
};

// Runs several hooks in order (e.g. a sparse mask, then a statistics observer).
class HookChain : public AttentionHook {
 public:
  explicit HookChain(std::vector<AttentionHook*> hooks) : hooks_(std::move(hooks)) {}
  bool active(int layer) const override;
  void mask_scores(const ScoreBlock& where, at::Tensor& scores) override;
  void observe_probs(const ScoreBlock& where, const at::Tensor& probs) override;
  // A chain fuses only when exactly one of its hooks is active for the layer.
  RowRule row_rule(int layer) const override;
  void count_reads(int layer, const ReadsCount& reads) override;

 private:
  std::vector<AttentionHook*> hooks_;
};

}  // namespace csa
