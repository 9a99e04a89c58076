// The hook interface of csa's one attention path (STYLE.md §4). Sparse policies, baselines and
// the calibration observers plug in here; no family has its own attention code.
//
// One protocol: a hook that restricts what queries read says so as data (a LayerRule, rule.h),
// and the attention path applies it, on whatever kernel it picks for the device, and reports
// the keys read back through count_reads. A hook that needs the attention probabilities
// (statistics, need curves) says observes(); the path then runs the explicit score path and
// calls observe() per block of query rows.
#pragma once

#include <ATen/ATen.h>

#include <vector>

#include "csa/attention/rule.h"

namespace csa {

// One block of query rows of one layer, after the rule was applied.
struct AttentionView {
  int layer = 0;
  int64_t q_pos0 = 0;  // query row r of the block sits at position q_pos0 + r (keys 0..q_pos0+r)
  at::Tensor probs;    // [B, H, Tq, S] float32, zero past each row's causal end and masked keys
  at::Tensor v;        // [B, Hkv, S, D] float32, the layer's values (query head h reads h / G)
};

class AttentionHook {
 public:
  virtual ~AttentionHook() = default;
  // True when this hook restricts or observes `layer` (false: the path runs plain dense there).
  virtual bool active(int layer) const = 0;
  // What the queries of `layer` keep; nullptr reads every causal key.
  virtual const LayerRule* rule(int layer) const {
    (void)layer;
    return nullptr;
  }
  // True when the hook needs observe() on `layer` (forces the explicit score path).
  virtual bool observes(int layer) const {
    (void)layer;
    return false;
  }
  virtual void observe(const AttentionView& view) { (void)view; }
  // The residual stream leaving `layer` ([B, T, C]: its attention and MLP added), where
  // observes(layer): the scale against which the layer's attention error is measured (need
  // curves) — what the next layers read it against through their norms.
  virtual void observe_residual(int layer, const at::Tensor& x) {
    (void)layer;
    (void)x;
  }
  // Keys read by one attention call under rule(layer): per query head [H] and per KV head [Hkv]
  // (the union over the query heads sharing it), summed over batch and query rows; float64
  // tensors on the compute device (queued there: no host sync per layer).
  virtual void count_reads(int layer, const at::Tensor& q_reads, const at::Tensor& kv_reads) {
    (void)layer;
    (void)q_reads;
    (void)kv_reads;
  }
  // False: the path may skip the reads of steps whose counting costs extra work (paged decode
  // steps, where the counts come from the selection; a benchmark of decoding speed says false).
  virtual bool counts_reads() const { return true; }
};

// Runs several hooks together (e.g. a sparse policy and a statistics observer). At most one of
// them may restrict a given layer.
class HookChain : public AttentionHook {
 public:
  explicit HookChain(std::vector<AttentionHook*> hooks) : hooks_(std::move(hooks)) {}
  bool active(int layer) const override;
  const LayerRule* rule(int layer) const override;
  bool observes(int layer) const override;
  void observe(const AttentionView& view) override;
  void observe_residual(int layer, const at::Tensor& x) override;
  void count_reads(int layer, const at::Tensor& q_reads, const at::Tensor& kv_reads) override;
  bool counts_reads() const override;

 private:
  std::vector<AttentionHook*> hooks_;
};

}  // namespace csa
