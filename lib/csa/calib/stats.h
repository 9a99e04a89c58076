// Attention statistics: an observer on the attention path that measures, for every
// (layer, query head), how diffuse its attention is (METHOD.md "Diffuseness"):
//   * effective keys  exp(H(p_i)), H the entropy of query i's attention distribution;
//   * mass keys       the fewest keys whose probabilities sum to at least tau;
// each averaged over the calibration queries (every causal query position of every window).
#pragma once

#include <ATen/ATen.h>

#include <vector>

#include "csa/attention/hooks.h"
#include "csa/core/json.h"

namespace csa {

struct CellStats {
  double effective_keys = 0;  // mean exp(entropy)
  double mass_keys = 0;       // mean keys to reach tau
  double entropy = 0;         // mean entropy (nats)
  double causal_keys = 0;     // mean number of keys a query could read (i + 1)
};

class AttentionStatsObserver : public AttentionHook {
 public:
  AttentionStatsObserver(int64_t n_layer, int64_t n_head, double tau);
  bool active(int layer) const override { return layer >= 0 && layer < n_layer_; }
  bool observes(int layer) const override { return active(layer); }
  void observe(const AttentionView& view) override;
  // Measure with tensor operations on the probabilities' device (entropy as a sum, the mass
  // count from a descending sort and a float64 prefix sum) instead of row by row on the CPU: the
  // default for CUDA probabilities; tests turn it on for CPU tensors to compare the two.
  void set_tensor_path(bool on) { tensor_path_ = on; }

  // Per (layer, head) means over all rows observed so far.
  std::vector<std::vector<CellStats>> result() const;
  int64_t rows_per_cell() const { return rows_; }
  double tau() const { return tau_; }

 private:
  int64_t n_layer_, n_head_;
  double tau_;
  void observe_tensors(const AttentionView& view);
  bool tensor_path_ = false;
  int64_t rows_ = 0;  // rows observed per cell (same for every cell)
  // Sums per cell: [L * H] of effective keys, mass keys, entropy, causal keys.
  std::vector<double> eff_, mass_, ent_, causal_;
};

// Per-row statistics of one probability row p[0..n) (sums to 1 over the causal keys); exposed
// for tests. Returns {entropy (nats), keys to reach tau}.
std::pair<double, int64_t> row_diffuseness(const float* p, int64_t n, double tau,
                                           std::vector<float>& scratch);

}  // namespace csa
