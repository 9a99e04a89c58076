// The hook that applies a SparsitySpec inside the attention path and tallies the reads the
// path reports. Layers where the pattern reads every causal key of every row (all budgets at
// least the context) are inactive, so the path keeps its fused dense kernel there; count_pass
// counts their reads as dense.
#pragma once

#include <ATen/ATen.h>

#include <utility>
#include <vector>

#include "csa/attention/hooks.h"
#include "csa/attention/reads.h"
#include "csa/attention/spec.h"

namespace csa {

class SparseAttentionHook : public AttentionHook {
 public:
  // InputError when the spec's dimensions are not the model's or a budget is < 1.
  SparseAttentionHook(SparsitySpec spec, int64_t n_layer, int64_t n_head, int64_t n_head_kv,
                      int64_t max_context);
  bool active(int layer) const override;
  const LayerRule* rule(int layer) const override;
  void count_reads(int layer, const at::Tensor& q_reads, const at::Tensor& kv_reads) override;
  bool counts_reads() const override { return counting_; }
  // Off: paged decode steps skip counting their reads (decoding benchmarks).
  void set_counting(bool on) { counting_ = on; }

  // Adds dense reads for `batch` sequences of `length` rows at every inactive layer (and the
  // dense denominators of all layers). Call once per forward pass.
  void count_pass(int64_t batch, int64_t length);
  // The tally so far (device counts queued without a sync are collected here).
  const ReadsTally& tally();
  void reset_tally();
  const SparsitySpec& spec() const { return spec_; }

 private:
  void flush();

  SparsitySpec spec_;
  int64_t n_layer_, n_head_, n_head_kv_;
  std::vector<LayerRule> rules_;  // [L]
  std::vector<bool> active_;      // [L]
  ReadsTally tally_;
  bool counting_ = true;
  std::vector<std::pair<int, std::pair<at::Tensor, at::Tensor>>> pending_;  // layer, q, kv
};

}  // namespace csa
