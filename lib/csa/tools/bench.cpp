#include "csa/tools/bench.h"

#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>

#include "csa/attention/attention.h"
#include "csa/attention/sparse_hook.h"
#include "csa/core/error.h"
#include "csa/core/runtime.h"

#if defined(CSA_WITH_CUDA)
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace csa {
namespace {

void sync(const at::Device& d) {
#if defined(CSA_WITH_CUDA)
  if (d.is_cuda()) c10::cuda::device_synchronize();
#else
  (void)d;
#endif
}

int64_t peak_bytes(const at::Device& d) {
#if defined(CSA_WITH_CUDA)
  if (d.is_cuda()) {
    auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(d.index() < 0 ? 0 : d.index());
    return stats.allocated_bytes[0].peak;
  }
#endif
  (void)d;
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<int64_t>(ru.ru_maxrss) * 1024;  // whole process, kilobytes on Linux
}

void reset_peak(const at::Device& d) {
#if defined(CSA_WITH_CUDA)
  if (d.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(d.index() < 0 ? 0 : d.index());
#else
  (void)d;
#endif
}

}  // namespace

Json run_attention_bench(const AttentionBenchOptions& o) {
  if (o.ctx < 1 || o.batch < 1 || o.heads < 1 || o.kv_heads < 1 || o.heads % o.kv_heads != 0 ||
      o.head_dim < 1 || o.repeats < 1)
    throw UsageError(
        "csa-bench: ctx, batch, heads, head_dim, repeats must be >= 1 and heads a "
        "multiple of kv_heads");
  const SparsityKind kind = parse_sparsity_kind(o.mode, "csa-bench: --mode");
  if (kind != SparsityKind::kDense && kind != SparsityKind::kTopK && kind != SparsityKind::kTopP)
    throw UsageError("csa-bench: --mode must be dense, top_k or top_p (got '" + o.mode + "')");
  const bool dense = kind == SparsityKind::kDense;
  if (o.path != "auto" && o.path != "explicit")
    throw UsageError("csa-bench: --path must be auto or explicit (got '" + o.path + "')");

  std::vector<int64_t> k = o.budgets.empty() ? std::vector<int64_t>{64} : o.budgets;
  if (k.size() == 1) k.assign(static_cast<size_t>(o.heads), k[0]);
  if (static_cast<int64_t>(k.size()) != o.heads)
    throw UsageError("csa-bench: --budget needs one value or one per head (" +
                     std::to_string(o.heads) + ")");

  at::manual_seed(0);
  auto opts = at::TensorOptions().device(o.device).dtype(o.dtype);
  at::Tensor q = at::randn({o.batch, o.heads, o.ctx, o.head_dim}, opts);
  at::Tensor kk = at::randn({o.batch, o.kv_heads, o.ctx, o.head_dim}, opts);
  at::Tensor v = at::randn({o.batch, o.kv_heads, o.ctx, o.head_dim}, opts);
  const double scale = 1.0 / std::sqrt(static_cast<double>(o.head_dim));

  SparsitySpec spec = dense                         ? SparsitySpec::dense()
                      : kind == SparsityKind::kTopK ? SparsitySpec::top_k({k}, "top-k")
                                                    : SparsitySpec::top_p(1, o.heads, o.mass);
  SparseAttentionHook hook(spec, 1, o.heads, o.kv_heads, o.ctx + 1);
  AttentionOptions ao;
  if (o.path == "explicit") {
    ao.allow_fused = false;
    ao.allow_fused_cpu = false;
  }
  AttentionHook* h = dense ? nullptr : &hook;  // dense + explicit: no fused flags

  c10::NoGradGuard no_grad;
  std::vector<double> secs;
  attend(q, kk, v, scale, 0, h, ao);  // warm-up (allocator, BLAS threads)
  sync(o.device);
  reset_peak(o.device);
  for (int r = 0; r < o.repeats; ++r) {
    hook.reset_tally();
    auto t0 = std::chrono::steady_clock::now();
    at::Tensor out = attend(q, kk, v, scale, 0, h, ao);
    sync(o.device);
    secs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::vector<double> sorted = secs;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted[sorted.size() / 2];

  // Work: causal scores are B·H·T(T+1)/2 dot products of D; A·V reads the kept keys.
  const double causal = static_cast<double>(o.batch * o.heads) * static_cast<double>(o.ctx) *
                        static_cast<double>(o.ctx + 1) / 2.0;
  const double reads = dense ? causal : hook.tally().q_sparse_total();
  const double kv_reads =
      dense ? causal / static_cast<double>(o.heads / o.kv_heads) : hook.tally().kv_sparse_total();
  const auto D = static_cast<double>(o.head_dim);
  const double elt = static_cast<double>(at::elementSize(o.dtype));
  Json j;
  j["ctx"] = o.ctx;
  j["batch"] = o.batch;
  j["heads"] = o.heads;
  j["kv_heads"] = o.kv_heads;
  j["head_dim"] = o.head_dim;
  j["mode"] = sparsity_kind_name(kind);
  if (kind == SparsityKind::kTopK) j["budgets"] = k;
  if (kind == SparsityKind::kTopP) j["mass"] = o.mass;
  j["path"] = o.path;
  j["device"] = device_description(o.device);
  j["dtype"] = dtype_name(o.dtype);
  j["threads"] = at::get_num_threads();
  j["seconds"] = secs;
  j["median_seconds"] = median;
  j["reads_fraction"] = reads / causal;
  // FLOPs: the causal q·k scores (all of them: selection needs them) + A·V over the kept keys.
  j["flops"] = 2.0 * D * causal + 2.0 * D * reads;
  j["flops_dense_equivalent"] = 4.0 * D * causal;
  // Bytes that must move at least once: q, k, v, out; plus the keys' V rows actually read.
  j["bytes_min"] =
      elt * D * static_cast<double>(o.batch) *
      (2.0 * static_cast<double>(o.heads * o.ctx) + 2.0 * static_cast<double>(o.kv_heads * o.ctx));
  j["kv_bytes_read"] = elt * D * kv_reads * 2.0;
  j["gflops_per_second"] = (2.0 * D * causal + 2.0 * D * reads) / median / 1e9;
  j["peak_memory_bytes"] = peak_bytes(o.device);
  j["peak_memory_scope"] = o.device.is_cuda() ? "CUDA caching allocator, this call" : "process RSS";
  return j;
}

}  // namespace csa
