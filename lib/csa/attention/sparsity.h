// Sparse attention patterns as data, and the hook that applies one inside the attention path
// while counting reads (METHOD.md: a query at position i reads min(k, i + 1) keys under top-k,
// the size of its top-p set under top-p; with GQA the KV-side reads of a group are the union of
// the keys its query heads read).
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "csa/attention/hooks.h"
#include "csa/core/json.h"

namespace csa {

enum class SparsityKind {
  kDense,    // every causal key
  kTopK,     // per (layer, head) budget k: the k highest-scoring keys
  kTopP,     // per (layer, head) mass p: the fewest keys whose probability reaches p
  kWindow,   // StreamingLLM: the last `window` keys plus the first `sinks` keys
  kStrided,  // Sparse Transformer strided: the last `window` keys plus every key j with
             // (i - j) % stride == 0, plus the first `sinks` keys
};

struct SparsitySpec {
  SparsityKind kind = SparsityKind::kDense;
  std::vector<std::vector<int64_t>> k;  // [L][H] (kTopK)
  std::vector<std::vector<double>> p;   // [L][H] (kTopP)
  int64_t window = 0, sinks = 0, stride = 0;
  std::string label;  // e.g. "policy k_max=96", "uniform k=64"

  static SparsitySpec dense();
  static SparsitySpec top_k(std::vector<std::vector<int64_t>> budgets, std::string label);
  static SparsitySpec uniform_top_k(int64_t n_layer, int64_t n_head, int64_t k);
  static SparsitySpec top_p(int64_t n_layer, int64_t n_head, double p);
  static SparsitySpec local_window(int64_t window, int64_t sinks);
  static SparsitySpec strided(int64_t stride, int64_t window, int64_t sinks);
  // Parses a baseline spec of csa-eval: "uniform:K", "topp:P", "window:W[,sinks:S]",
  // "strided:S[,window:W][,sinks:S]". UsageError on anything else.
  static SparsitySpec parse_baseline(const std::string& text, int64_t n_layer, int64_t n_head);

  std::string kind_name() const;
  Json to_json() const;
};

// Reads of one pass, per layer and head: query side [L][H], KV side [L][Hkv], dense and sparse.
struct ReadsTally {
  std::vector<std::vector<double>> q_sparse, q_dense, kv_sparse, kv_dense;
  void init(int64_t n_layer, int64_t n_head, int64_t n_head_kv);
  void add(const ReadsTally& other);
  double q_sparse_total() const;
  double q_dense_total() const;
  double kv_sparse_total() const;
  double kv_dense_total() const;
  double q_fraction() const;   // sparse / dense, query side
  double kv_fraction() const;  // sparse / dense, KV side
};

// Applies a SparsitySpec in mask_scores and counts the reads of every query row it sees.
// Layers where the pattern reads every causal key of every row (e.g. all budgets >= context)
// are inactive, so the attention path keeps its fused dense kernel there; the caller counts
// their reads as dense (see count_dense_rows).
class SparseAttentionHook : public AttentionHook {
 public:
  SparseAttentionHook(SparsitySpec spec, int64_t n_layer, int64_t n_head, int64_t n_head_kv,
                      int64_t max_context);
  bool active(int layer) const override;
  void mask_scores(const ScoreBlock& where, at::Tensor& scores) override;
  RowRule row_rule(int layer) const override;
  void count_reads(int layer, const ReadsCount& reads) override;

  // Adds dense reads for `batch` sequences of `length` rows at every inactive layer (and the
  // dense denominators of all layers). Call once per forward pass.
  void count_pass(int64_t batch, int64_t length);
  // Device passes queue their counts on the device (no sync per layer); read here.
  const ReadsTally& tally() const;
  void reset_tally();
  const SparsitySpec& spec() const { return spec_; }

 private:
  void mask_top_k(const ScoreBlock& where, at::Tensor& scores);
  void mask_top_p(const ScoreBlock& where, at::Tensor& scores);
  void mask_static(const ScoreBlock& where, at::Tensor& scores);
  void count_kept(const ScoreBlock& where, const at::Tensor& scores);

  SparsitySpec spec_;
  int64_t n_layer_, n_head_, n_head_kv_, max_context_;
  std::vector<bool> active_;
  mutable ReadsTally tally_;
  mutable std::vector<std::pair<int, std::pair<at::Tensor, at::Tensor>>> pending_;  // layer, q, kv
};

}  // namespace csa
