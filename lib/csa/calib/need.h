// Need curves (METHOD.md "What we measured about step 2"): for every (layer, query head), every
// position band and every budget k of a grid, what keeping only the top-k keys does to that head,
// measured in the dense calibration pass:
//   mass_out   attention mass left out (1 - the top-k mass), mean over queries
//   rel_err    ||o_k - o|| / ||o||, o the head's output, o_k the output from its top-k keys
//              (probabilities renormalised over them, as the sparse path does), mean and 95th
//              percentile over queries
//   res_err    ||W_o,h (o_k - o)||²: the squared error that reaches the residual stream through
//              the head's slice of the output projection, mean over queries; with the mean
//              squared norm of the residual stream leaving the layer (residual_ms) it gives
//              res_rel = res_err / residual_ms, the relative perturbation of the stream that the
//              following layers see through their norms. (The stream *entering* a layer is the
//              wrong scale: before layer 0 it is the bare embedding, ~1/500 of the stream after
//              it on the shared minis, which made layer 0 look 500x too sensitive.)
// and, per KV group, the mean size of the union of its query heads' top-k sets (the KV-side
// reads of giving every head of the group k). A query at position i sees i + 1 keys; budgets
// k >= i + 1 read everything and leave no error.
//
// Top-p curves, from the same rows: for every mass p of a second grid (top_p_grid), what the
// top_p rule (rule.h) does to the head: p_keys, the mean number of keys a query keeps (the
// fewest keys, by probability, whose mass reaches p; at most the causal keys, at least 1; ties
// to the larger index, as the rule), and p_rel_err, the mean rel_err of keeping exactly those
// keys. Their cost is a sort of the top-k segments that a crossing falls in (the partition over
// the budget grid orders everything else).
//
// Bands follow the context: [0, 16), [16, 32), [32, 64), ... octaves up to the calibration
// context, so budgets can grow with a query's context at both ends. Rows are sampled per band
// (every row of short bands, an even stride in long ones: at least kRowsPerBand rows per band and
// window) — the long rows dominate the cost and are the most alike.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

#include "csa/attention/hooks.h"
#include "csa/core/json.h"

namespace csa {

// Powers of two and their midpoints (1, 2, 3, 4, 6, 8, 12, 16, 24, ...) up to ctx (ctx included).
std::vector<int64_t> budget_grid(int64_t ctx);
// Octave bands of query positions: {0, 16, 32, 64, ...} below ctx.
std::vector<int64_t> position_bands(int64_t ctx);
// Masses of the top-p curves: 0.01, 0.02, 0.05, 0.1 ... 0.9 by tenths (0.85 too), 0.93, 0.95,
// 0.97, 0.98, 0.99, 0.995, 0.999. Low masses matter: a near-uniform head that top-k serves with
// a few dozen keys keeps p of its context under top-p, so only a small p makes it cheap; high
// ones resolve the sharp heads' tails. (p = 1, dense, is not measured: it leaves no error.)
std::vector<double> top_p_grid();

// Curves indexed [L][H][NB][G] (query heads) or [L][Hkv][NB][G] (KV groups), flattened.
struct NeedCurves {
  int64_t n_layer = 0, n_head = 0, n_head_kv = 0, ctx = 0;
  std::vector<int64_t> grid;                                    // [G] budgets
  std::vector<int64_t> band_start;                              // [NB]
  std::vector<double> rows;                                     // [L][H][NB] queries measured
  std::vector<double> mass_out, rel_err, rel_err_p95, res_err;  // [L][H][NB][G]
  std::vector<double> kv_union;                                 // [L][Hkv][NB][G]
  std::vector<double> residual_ms;  // [L] mean ||x||² of the residual stream leaving the layer
  // Top-p curves (empty in policies calibrated before them): masses, and per mass the mean keys
  // kept and the mean rel_err.
  std::vector<double> p_grid;             // [P] ascending, in (0, 1)
  std::vector<double> p_keys, p_rel_err;  // [L][H][NB][P]

  int64_t n_grid() const { return static_cast<int64_t>(grid.size()); }
  int64_t n_p() const { return static_cast<int64_t>(p_grid.size()); }
  bool has_top_p() const { return !p_grid.empty(); }
  int64_t n_bands() const { return static_cast<int64_t>(band_start.size()); }
  // Positions [lo, hi) of band b within the calibration context.
  int64_t band_end(int64_t b) const;
  size_t at(int64_t l, int64_t h, int64_t b, int64_t g) const {
    return static_cast<size_t>(((l * n_head + h) * n_bands() + b) * n_grid() + g);
  }
  size_t at_kv(int64_t l, int64_t kv, int64_t b, int64_t g) const {
    return static_cast<size_t>(((l * n_head_kv + kv) * n_bands() + b) * n_grid() + g);
  }
  size_t at_p(int64_t l, int64_t h, int64_t b, int64_t q) const {
    return static_cast<size_t>(((l * n_head + h) * n_bands() + b) * n_p() + q);
  }

  Json to_json() const;
  // Validates dimensions against the model's (errors name `origin` and the field).
  static NeedCurves from_json(const Json& j, const std::string& origin, int64_t n_layer,
                              int64_t n_head, int64_t n_head_kv);
};

class NeedObserver : public AttentionHook {
 public:
  static constexpr int64_t kRowsPerBand = 256;

  // out_proj[l]: the layer's output projection [C, H * D] (float32), for res_err.
  NeedObserver(int64_t n_layer, int64_t n_head, int64_t n_head_kv, int64_t head_dim, int64_t ctx,
               const std::vector<at::Tensor>& out_proj);
  bool active(int layer) const override { return layer >= 0 && layer < n_layer_; }
  bool observes(int layer) const override { return active(layer); }
  void observe(const AttentionView& view) override;
  void observe_residual(int layer, const at::Tensor& x) override;
  // Measure with tensor operations on the probabilities' device (rank by a stable sort,
  // per-segment sums by batched products, reductions per band there; the host receives the
  // band sums) instead of row by row on the CPU: the default for CUDA probabilities; tests turn
  // it on for CPU tensors to compare the two. It works on blocks of rows whose per-segment
  // weights take about `block_bytes`.
  void set_tensor_path(bool on, int64_t block_bytes = int64_t(256) << 20) {
    tensor_path_ = on;
    block_bytes_ = block_bytes;
  }

  NeedCurves result() const;

 private:
  void observe_tensors(const AttentionView& view);
  // The position band of a query position, and whether its row is measured: every row of a
  // band of at most kRowsPerBand positions, else an even stride.
  int64_t band_of(int64_t pos) const;
  bool sampled(int64_t pos) const;
  static constexpr int kHistBins = 48;  // log-spaced rel_err histogram for the percentile
  int64_t n_layer_, n_head_, n_head_kv_, head_dim_, ctx_;
  std::vector<int64_t> grid_, bands_;
  std::vector<double> masses_;          // [P] top_p_grid()
  std::vector<double> p_keys_, p_rel_;  // [L][H][NB][P] sums
  std::vector<at::Tensor> res_map_;     // [L] [H, D, D]: R_h with ||R_h e|| = ||W_o,h e||
  std::vector<double> rows_, mass_, rel_, res_, union_;  // sums
  std::vector<double> resid_sum_, resid_rows_;           // [L] sum of ||x||², tokens
  std::vector<uint32_t> hist_;                           // [L][H][NB][G][kHistBins]
  // The last attention call's values (view.v, its version and layer) and, per query head,
  // them and their residual-space images: [B, H, S, D] each.
  at::Tensor values_of_, vh_, vr_;
  int64_t values_version_ = -1;
  int values_layer_ = -1;
  bool tensor_path_ = false;
  int64_t block_bytes_ = int64_t(256) << 20;
};

// Per-row need of one query over n keys, for tests and the observer: probabilities p[0..n), the
// values of its keys v [n, D] and their residual-space images vr [n, D] (row-major), budgets
// `grid` (ascending) and top-p masses `masses` (ascending, in (0, 1)). Outputs per grid point:
// mass left out, relative output error, residual squared error, and seg[j] = the first grid
// index whose top set contains key j (grid.size() if none); per mass: the keys the top_p rule
// keeps (p_keys, in 1..n; n when the row's mass does not reach p) and the relative output error
// of keeping them (p_rel_err). Top sets follow the kernels' rule: higher probability first, ties
// to the larger index; the mass is summed in that order, in double, as count_for_mass does.
struct RowNeed {
  std::vector<double> mass_out, rel_err, res_err;
  std::vector<int32_t> seg;
  std::vector<int64_t> p_keys;
  std::vector<double> p_rel_err;
};
void row_need(const float* p, int64_t n, const float* v, const float* vr, int64_t D,
              const std::vector<int64_t>& grid, const std::vector<double>& masses, RowNeed& out,
              std::vector<uint64_t>& keys);

}  // namespace csa
