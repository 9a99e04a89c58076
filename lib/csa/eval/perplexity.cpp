#include "csa/eval/perplexity.h"

#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "csa/attention/cpu_kernels.h"
#include "csa/core/error.h"
#include "csa/core/profile.h"
#include "csa/core/progress.h"

namespace csa {

double PassResult::ppl() const {
  return scored ? std::exp(nll_sum / static_cast<double>(scored)) : NAN;
}

double PassResult::bucket_ppl(size_t b) const {
  return bucket_count[b] ? std::exp(bucket_nll[b] / static_cast<double>(bucket_count[b])) : NAN;
}

double PassResult::tokens_per_second() const {
  return seconds > 0 ? static_cast<double>(tokens_processed) / seconds : 0;
}

namespace {

// -log softmax(logits)[target] per row: logsumexp - the target's logit, in float32 as
// at::logsumexp computes it, returned as float64 on the CPU. Float32 CPU logits take one pass
// per row (max, then the sum of exponentials, cpu_kernels.h) instead of logsumexp's full-size
// temporaries; the result agrees with it to float rounding.
at::Tensor token_nll(const at::Tensor& logits, const at::Tensor& target) {
  if (!logits.is_cpu() || logits.scalar_type() != at::kFloat || !logits.is_contiguous())
    return (at::logsumexp(logits, -1) - logits.gather(1, target).squeeze(1))
        .to(at::kCPU, at::kDouble);
  const int64_t N = logits.size(0), V = logits.size(1);
  at::Tensor nll = at::empty({N}, at::kDouble);
  at::Tensor tg = target.to(at::kLong).contiguous();
  const float* lp = logits.data_ptr<float>();
  const int64_t* tp = tg.data_ptr<int64_t>();
  double* out = nll.data_ptr<double>();
  at::parallel_for(0, N, 16, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n) {
      const float* row = lp + n * V;
      const float m = cpu::max_of(row, V);
      const float lse = m + std::log(cpu::sum_exp_shifted(row, m, V));
      out[n] = static_cast<double>(lse - row[tp[n]]);
    }
  });
  return nll;
}

// Logits of at most this many elements at a time on CUDA (1 GiB of float32): the NLL of a
// batch's windows in one reduction and one copy to the host, where one window at a time paid a
// device synchronisation per window. The CPU takes one window at a time (its peak memory).
constexpr int64_t kCudaLogitElems = int64_t{1} << 28;

// Runs one batch of windows and adds its NLL to r (totals, buckets, per-window sums). `hidden`
// is decoder.hidden of the batch's tokens.
void score_batch(const Decoder& decoder, const std::vector<Window>& windows,
                 const WindowBatch& batch, const at::Tensor& hidden, const EvalProtocol& p,
                 PassResult& r) {
  const int64_t B = static_cast<int64_t>(batch.count), len = batch.length, n = len - 1;
  const size_t n_buckets = static_cast<size_t>(p.buckets);
  const at::Device device = hidden.device();
  const int64_t per =
      device.is_cuda()
          ? std::max<int64_t>(
                1, kCudaLogitElems /
                       std::max<int64_t>(1, n * std::max<int64_t>(1, decoder.config().vocab_size)))
          : 1;
  // Targets are tokens 1..len-1, predicted from positions 0..len-2.
  const at::Tensor targets = batch.tokens.narrow(1, 1, n).to(device);  // [B, len-1]
  for (int64_t b0 = 0; b0 < B; b0 += per) {
    const int64_t nb = std::min(per, B - b0);
    at::Tensor h = hidden.narrow(0, b0, nb).narrow(1, 0, n).reshape({nb * n, hidden.size(2)});
    at::Tensor logits = decoder.logits(h);  // [nb * (len-1), V]
    at::Tensor target = targets.narrow(0, b0, nb).reshape({nb * n, 1});
    CSA_PROFILE_SCOPE("nll");
    at::Tensor nll = token_nll(logits, target);  // [nb * (len-1)] float64 on the CPU
    for (int64_t bb = 0; bb < nb; ++bb) {
      const size_t wi = batch.first + static_cast<size_t>(b0 + bb);
      const Window& w = windows[wi];
      const double* v = nll.data_ptr<double>() + bb * n;
      double window_nll = 0;
      int64_t window_scored = 0;
      double* wb_nll = r.window_bucket_nll.data() + wi * n_buckets;
      int64_t* wb_count = r.window_bucket_count.data() + wi * n_buckets;
      for (int64_t t = 1; t < len; ++t) {
        const double x = v[t - 1];
        if (t >= w.first_scored) {
          r.nll_sum += x;
          ++r.scored;
          window_nll += x;
          ++window_scored;
        }
        const auto bucket = static_cast<size_t>(t * p.buckets / p.ctx);
        r.bucket_nll[bucket] += x;
        ++r.bucket_count[bucket];
        wb_nll[bucket] += x;
        ++wb_count[bucket];
      }
      r.window_nll[wi] = window_nll;
      r.window_scored[wi] = window_scored;
    }
  }
}

// An empty result shaped for `windows`.
PassResult empty_pass(const std::vector<Window>& windows, const EvalProtocol& p,
                      const std::string& label) {
  PassResult r;
  r.label = label;
  const size_t n_buckets = static_cast<size_t>(p.buckets);
  r.bucket_nll.assign(n_buckets, 0.0);
  r.bucket_count.assign(n_buckets, 0);
  r.window_nll.assign(windows.size(), 0.0);
  r.window_scored.assign(windows.size(), 0);
  r.window_bucket_nll.assign(windows.size() * n_buckets, 0.0);
  r.window_bucket_count.assign(windows.size() * n_buckets, 0);
  r.cluster_windows = (p.ctx + p.stride - 1) / p.stride;
  return r;
}

}  // namespace

void warm_up(const Decoder& decoder, const std::vector<int64_t>& ids, const EvalProtocol& p) {
  const at::Device device = decoder.model().device;
  if (!device.is_cuda() || ids.empty()) return;
  const std::vector<Window> windows =
      plan_windows(static_cast<int64_t>(ids.size()), p.ctx, p.stride);
  const std::vector<Window> first(windows.begin(),
                                  windows.begin() + std::min<int64_t>(p.batch, windows.size()));
  c10::NoGradGuard no_grad;
  PassResult scratch = empty_pass(first, p, "warm-up");
  for_each_batch(first, ids, p.batch, [&](const WindowBatch& batch) {
    // The timed passes' whole path, NLL included (its kernels load on first use), then a wait.
    score_batch(decoder, first, batch, decoder.hidden(batch.tokens.to(device), nullptr), p,
                scratch);
  });
}

PassResult evaluate_pass(const Decoder& decoder, const std::vector<int64_t>& ids,
                         const EvalProtocol& p, SparseAttentionHook* hook,
                         const std::string& label) {
  const auto start = std::chrono::steady_clock::now();
  if (hook != nullptr) hook->reset_tally();
  const std::vector<Window> windows =
      plan_windows(static_cast<int64_t>(ids.size()), p.ctx, p.stride);
  PassResult r = empty_pass(windows, p, label);
  const at::Device device = decoder.model().device;
  int64_t total_tokens = 0;
  for (const auto& w : windows) total_tokens += w.end - w.begin;
  Progress progress(label, total_tokens);
  ProfileSection section(label);
  c10::NoGradGuard no_grad;

  for_each_batch(windows, ids, p.batch, [&](const WindowBatch& batch) {
    const int64_t B = static_cast<int64_t>(batch.count), len = batch.length;
    at::Tensor hidden = decoder.hidden(batch.tokens.to(device), hook);  // [B, len, C]
    if (hook != nullptr) hook->count_pass(B, len);
    score_batch(decoder, windows, batch, hidden, p, r);
    r.windows += B;
    ++r.forward_passes;
    r.tokens_processed += B * len;
    progress.advance(B * len);
  });
  progress.finish();
  if (hook != nullptr) r.reads = hook->tally();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

double Comparison::margin(double tolerance, double position_tolerance) const {
  const auto units = [](double x, double tol) {
    constexpr double kInf = std::numeric_limits<double>::infinity();
    if (std::isnan(x)) return kInf;
    if (tol > 0) return x / tol;
    return x <= 0 ? 0.0 : kInf;
  };
  return std::max(units(delta_rel_upper, tolerance),
                  units(max_bucket_worsening_upper, position_tolerance));
}

bool Comparison::meets(double tolerance, double position_tolerance) const {
  return margin(tolerance, position_tolerance) <= 1;
}

Json Comparison::summary_json() const {
  return {{"ppl", sparse_ppl},
          {"delta_rel", delta_rel},
          {"max_abs_bucket_delta_rel", max_abs_bucket_delta_rel},
          {"max_bucket_worsening_rel", max_bucket_worsening_rel},
          {"delta_rel_upper", delta_rel_upper},
          {"max_bucket_worsening_upper", max_bucket_worsening_upper}};
}

Json Comparison::to_json() const {
  Json j = summary_json();
  j.update(Json{{"delta_ppl", delta},
                {"bucket_delta_rel", bucket_delta_rel},
                {"bucket_delta_rel_upper", bucket_delta_rel_upper},
                {"delta_se", delta_se},
                {"bucket_se", bucket_se}});
  return j;
}

std::string Comparison::upper_bounds_note() const {
  if (delta_rel_upper == delta_rel && max_bucket_worsening_upper == max_bucket_worsening_rel)
    return "";
  char buf[96];
  std::snprintf(buf, sizeof buf, " (upper bounds %+.3f%%, %+.3f%%)", 100 * delta_rel_upper,
                100 * max_bucket_worsening_upper);
  return buf;
}

namespace {

// Whether two passes carry paired per-window sums: the same windows, clusters and buckets, and
// the same targets in every window (the pairing the standard errors need).
bool paired(const PassResult& d, const PassResult& s) {
  const size_t W = d.window_nll.size(), B = d.bucket_nll.size();
  return W > 0 && d.cluster_windows >= 1 && d.cluster_windows == s.cluster_windows &&
         s.window_nll.size() == W && d.window_scored == s.window_scored &&
         d.window_scored.size() == W && s.bucket_nll.size() == B &&
         d.window_bucket_nll.size() == W * B && s.window_bucket_nll.size() == W * B &&
         d.window_bucket_count == s.window_bucket_count && d.window_bucket_count.size() == W * B;
}

// The standard error of the ratio m = sum d / sum n over clusters (d_c: a cluster's summed NLL
// difference, n_c: its targets), clusters with no targets left out:
// se^2 = C / (C - 1) * sum_c (d_c - m n_c)^2 / (sum_c n_c)^2. 0 with fewer than two clusters.
double ratio_se(const std::vector<double>& d, const std::vector<int64_t>& n) {
  double sum_d = 0, sum_n = 0;
  int64_t clusters = 0;
  for (size_t c = 0; c < d.size(); ++c) {
    if (n[c] == 0) continue;
    sum_d += d[c];
    sum_n += static_cast<double>(n[c]);
    ++clusters;
  }
  if (clusters < 2) return 0;
  const double m = sum_d / sum_n;
  double ss = 0;
  for (size_t c = 0; c < d.size(); ++c) {
    if (n[c] == 0) continue;
    const double r = d[c] - m * static_cast<double>(n[c]);
    ss += r * r;
  }
  const double C = static_cast<double>(clusters);
  return std::sqrt(C / (C - 1) * ss) / sum_n;
}

// exp(log(1 + rel) + z * se) - 1: the upper bound of a relative delta whose log is the mean NLL
// difference; the point value itself when z * se is 0.
double upper_rel(double rel, double z, double se) {
  const double shift = z * se;
  return shift == 0 ? rel : std::expm1(std::log1p(rel) + shift);
}

}  // namespace

Comparison compare(const PassResult& dense, const PassResult& sparse, double z) {
  Comparison c;
  c.dense_ppl = dense.ppl();
  c.sparse_ppl = sparse.ppl();
  c.delta = c.sparse_ppl - c.dense_ppl;
  c.delta_rel = c.delta / c.dense_ppl;
  const size_t B = dense.bucket_nll.size();
  for (size_t b = 0; b < B; ++b) {
    const double d = dense.bucket_ppl(b), s = sparse.bucket_ppl(b);
    const double rel = std::isfinite(d) && std::isfinite(s) ? (s - d) / d : 0.0;
    c.bucket_delta_rel.push_back(rel);
    c.max_abs_bucket_delta_rel = std::max(c.max_abs_bucket_delta_rel, std::abs(rel));
    c.max_bucket_worsening_rel = std::max(c.max_bucket_worsening_rel, rel);
  }
  // Standard errors from the paired per-window sums, clustered by cluster_windows windows.
  c.bucket_se.assign(B, 0.0);
  if (paired(dense, sparse)) {
    const size_t W = dense.window_nll.size();
    const auto K = static_cast<size_t>(dense.cluster_windows);
    const size_t C = (W + K - 1) / K;
    // The SE of one quantity from its per-window sums: entry w * stride + offset of the NLL and
    // count vectors (the scored targets: stride 1; bucket b: stride B, offset b).
    auto clustered_se = [&](const std::vector<double>& s_nll, const std::vector<double>& d_nll,
                            const std::vector<int64_t>& count, size_t stride, size_t offset) {
      std::vector<double> d(C, 0.0);
      std::vector<int64_t> n(C, 0);
      for (size_t w = 0; w < W; ++w) {
        const size_t i = w * stride + offset;
        d[w / K] += s_nll[i] - d_nll[i];
        n[w / K] += count[i];
      }
      return ratio_se(d, n);
    };
    c.delta_se = clustered_se(sparse.window_nll, dense.window_nll, dense.window_scored, 1, 0);
    for (size_t b = 0; b < B; ++b)
      c.bucket_se[b] = clustered_se(sparse.window_bucket_nll, dense.window_bucket_nll,
                                    dense.window_bucket_count, B, b);
  }
  c.delta_rel_upper = upper_rel(c.delta_rel, z, c.delta_se);
  for (size_t b = 0; b < B; ++b) {
    const double up = upper_rel(c.bucket_delta_rel[b], z, c.bucket_se[b]);
    c.bucket_delta_rel_upper.push_back(up);
    c.max_bucket_worsening_upper = std::max(c.max_bucket_worsening_upper, up);
  }
  return c;
}

double normal_quantile(double p) {
  if (!(p > 0 && p < 1))
    throw UsageError("normal_quantile: p must be in (0, 1), got " + std::to_string(p));
  // Phi(z) = 0.5 * erfc(-z / sqrt 2) rises with z; Phi(-40) and 1 - Phi(40) are below any double
  // p in (0, 1) apart from denormals, so [-40, 40] brackets the root.
  double lo = -40, hi = 40;
  while (true) {
    const double mid = 0.5 * (lo + hi);
    if (mid <= lo || mid >= hi) break;  // no double left between them
    if (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p)
      lo = mid;
    else
      hi = mid;
  }
  return 0.5 * (lo + hi);
}

double confidence_z(double confidence, const std::string& option) {
  if (confidence == 0) return 0;
  if (!(confidence >= 0.5 && confidence < 1)) {
    char value[32];
    std::snprintf(value, sizeof value, "%g", confidence);
    throw UsageError(option + " " + value +
                     ": expected 0 (point estimates) or a one-sided confidence level in [0.5, 1)");
  }
  return normal_quantile(confidence);
}

Json attention_cost(const ReadsTally& reads, const ModelConfig& c, size_t kv_bytes) {
  const double D = static_cast<double>(c.head_dim);
  const double eb = static_cast<double>(kv_bytes);
  return {{"flops_dense", 4 * D * reads.q_dense_total()},
          {"flops_sparse", 4 * D * reads.q_sparse_total()},
          {"kv_bytes_dense", 2 * D * eb * reads.kv_dense_total()},
          {"kv_bytes_sparse", 2 * D * eb * reads.kv_sparse_total()},
          {"note",
           "attention only (q.k and p.v over the keys read; K and V bytes at the "
           "compute dtype); a top-k kernel still scores every causal key to select"}};
}

Json pass_to_json(const PassResult& r, const EvalProtocol& p) {
  Json buckets = Json::array();
  for (size_t b = 0; b < r.bucket_nll.size(); ++b) {
    const int64_t lo = static_cast<int64_t>(b) * p.ctx / p.buckets;
    const int64_t hi = (static_cast<int64_t>(b) + 1) * p.ctx / p.buckets;
    buckets.push_back(
        {{"positions", {lo, hi}}, {"targets", r.bucket_count[b]}, {"ppl", r.bucket_ppl(b)}});
  }
  Json j = {{"label", r.label},
            {"ppl", r.ppl()},
            {"nll_mean", r.scored ? r.nll_sum / r.scored : NAN},
            {"scored_targets", r.scored},
            {"windows", r.windows},
            {"forward_passes", r.forward_passes},
            {"tokens_processed", r.tokens_processed},
            {"wall_seconds", r.seconds},
            {"tokens_per_second", r.tokens_per_second()},
            {"buckets", buckets}};
  if (!r.reads.q_dense.empty()) {
    j["reads"] = {
        {"query_side_fraction", r.reads.q_fraction()}, {"kv_side_fraction", r.reads.kv_fraction()},
        {"query_sparse", r.reads.q_sparse_total()},    {"query_dense", r.reads.q_dense_total()},
        {"kv_sparse", r.reads.kv_sparse_total()},      {"kv_dense", r.reads.kv_dense_total()}};
  }
  return j;
}

}  // namespace csa
