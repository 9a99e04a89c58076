// Sliding-window perplexity (METHOD.md; the Hugging Face "perplexity of fixed-length models"
// protocol): windows of ctx tokens advanced by stride; the first window scores all its targets,
// each later window only the targets no earlier window scored; ppl = exp(mean NLL).
// Per-position buckets score *every* target of every window, bucketed by its position in the
// window, so dense and sparse can be compared position by position.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "csa/attention/sparse_hook.h"
#include "csa/core/json.h"
#include "csa/corpus/windows.h"
#include "csa/model/decoder.h"

namespace csa {

struct PassResult {
  std::string label;
  double nll_sum = 0;
  int64_t scored = 0;              // targets in the perplexity
  std::vector<double> bucket_nll;  // per-position sums over every target of every window
  std::vector<int64_t> bucket_count;
  ReadsTally reads;  // empty for a dense pass without a hook
  int64_t windows = 0, forward_passes = 0, tokens_processed = 0;
  double seconds = 0;
  // Per window, in plan order (plan_windows): the scored targets' NLL sum and count, and per
  // window and bucket the NLL sum and count of every target ([windows * buckets], window-major).
  // compare() pairs them with another pass's for the confidence bound.
  std::vector<double> window_nll;
  std::vector<int64_t> window_scored;
  std::vector<double> window_bucket_nll;     // [windows * buckets]
  std::vector<int64_t> window_bucket_count;  // [windows * buckets]
  // Windows per cluster of the confidence bound: ceil(ctx / stride), the windows a target's
  // context can overlap (neighbouring windows share tokens, so they are not independent).
  int64_t cluster_windows = 1;

  double ppl() const;
  double bucket_ppl(size_t b) const;
  double tokens_per_second() const;  // processed (window) tokens per second
};

// Runs every window through the decoder (with `hook` applied if not null) and accumulates NLL.
PassResult evaluate_pass(const Decoder& decoder, const std::vector<int64_t>& ids,
                         const EvalProtocol& protocol, SparseAttentionHook* hook,
                         const std::string& label);

// On CUDA: one untimed dense pass over the first batch of windows, NLL included, so that the
// process's one-time set-up (cuBLAS handles, kernel modules loaded on first use, the fused
// paths' first calls) is not timed as part of the first pass; nothing elsewhere (the CPU's first
// pass is timed as it runs).
void warm_up(const Decoder& decoder, const std::vector<int64_t>& ids, const EvalProtocol& protocol);

// Dense vs sparse on the same windows.
struct Comparison {
  double dense_ppl = 0, sparse_ppl = 0, delta = 0, delta_rel = 0;
  std::vector<double> bucket_delta_rel;  // (sparse - dense) / dense per bucket
  double max_abs_bucket_delta_rel = 0;
  double max_bucket_worsening_rel = 0;  // max(0, worst bucket's delta_rel)
  // The confidence bound (docs/metrics.md, "Dense-matching quality"): standard errors of the mean
  // NLL difference (sparse - dense, log space) over clusters of consecutive windows, and the
  // one-sided upper bounds exp(m + z * se) - 1 of the relative deltas. With z = 0, fewer than two
  // clusters or passes without per-window sums (se 0), every upper value equals its point value.
  double delta_se = 0;
  std::vector<double> bucket_se;
  double delta_rel_upper = 0;
  std::vector<double> bucket_delta_rel_upper;
  double max_bucket_worsening_upper = 0;  // max(0, worst bucket's upper bound)
  // Dense-matching quality (METHOD.md, docs/metrics.md): sparse ppl not worse than dense by more
  // than `tolerance` (relative) and no position bucket worse by more than `position_tolerance`,
  // both on the upper bounds (the point values at z = 0). One-sided: a sparse run that is better
  // than dense matches; the signed deltas are reported.
  bool meets(double tolerance, double position_tolerance) const;
  // The same rule as one number, the sweep's quality margin: the larger of the two upper bounds
  // in units of its tolerance (a tolerance of 0 counts any worsening as infinitely far, none as
  // 0; NaN as infinitely far). meets() is margin() <= 1.
  double margin(double tolerance, double position_tolerance) const;
  // The scalar summary of a chosen level (ppl, overall and worst-bucket deltas and their
  // bounds), and every field for results JSON (the summary, buckets, standard errors).
  Json summary_json() const;
  Json to_json() const;
  // For log lines: " (upper bounds +a%, +b%)" of the overall and worst-bucket deltas where they
  // differ from the point values; empty where they equal them (point estimates, or too few
  // clusters for a standard error).
  std::string upper_bounds_note() const;
};
// `z`: the one-sided normal quantile of the confidence bound (confidence_z); 0: point estimates.
Comparison compare(const PassResult& dense, const PassResult& sparse, double z = 0);

// The standard normal quantile: z with Phi(z) = p, p in (0, 1) (bisection on
// 0.5 * erfc(-z / sqrt 2), to double precision). UsageError outside (0, 1).
double normal_quantile(double p);

// The z of a one-sided confidence level: 0 for 0 (point estimates, the bound off), else
// normal_quantile(confidence) for confidence in [0.5, 1). UsageError otherwise, naming `option`
// (a level under 0.5 would loosen the point criterion).
double confidence_z(double confidence, const std::string& option = "--confidence");

// Attention cost of a pass from its reads: FLOPs (q.k and p.v: 4 * head_dim per read) and bytes
// of K and V read (KV-side reads * 2 * head_dim * element size).
Json attention_cost(const ReadsTally& reads, const ModelConfig& c, size_t kv_element_bytes);

Json pass_to_json(const PassResult& r, const EvalProtocol& p);

}  // namespace csa
