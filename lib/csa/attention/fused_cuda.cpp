#include "csa/attention/fused_cuda.h"

#include <stdexcept>

#ifdef CSA_WITH_CUDA_KERNELS
#include <ATen/cuda/CUDAContext.h>

#include <algorithm>
#include <climits>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "csa/attention/fused_cuda_kernel.h"
#include "csa/core/error.h"
#endif

namespace csa {

#ifndef CSA_WITH_CUDA_KERNELS

bool fused_cuda_built() { return false; }

at::Tensor device_budget_schedule(const LayerRule&, int64_t, int64_t, const at::Device&) {
  throw std::logic_error("device_budget_schedule: this build has no CUDA kernels");
}

at::Tensor fused_attention_cuda(const at::Tensor&, const at::Tensor&, const at::Tensor&, double,
                                const LayerRule&, at::Tensor*, at::Tensor*) {
  return {};
}

int64_t tf32_split_mismatches_cuda() {
  throw std::logic_error("tf32_split_mismatches_cuda: this build has no CUDA kernels");
}

#else

bool fused_cuda_built() { return true; }

int64_t tf32_split_mismatches_cuda() {
  const int64_t n = cuda::tiled_tf32_split_mismatches();
  if (n < 0) throw std::runtime_error("tf32_split_mismatches_cuda: a CUDA call failed");
  return n;
}

bool kernel_elem_type(at::ScalarType st, cuda::ElemType* type) {
  switch (st) {
    case at::kFloat:
      *type = cuda::ElemType::kFloat32;
      return true;
    case at::kHalf:
      *type = cuda::ElemType::kFloat16;
      return true;
    case at::kBFloat16:
      *type = cuda::ElemType::kBFloat16;
      return true;
    default:
      return false;
  }
}

// Cached per (rule, device) so that a forward pass copies it once, not once per call (a
// host-to-device copy from pageable memory synchronises). Entries are checked against the rule's
// contents, so a rule at a reused address is copied again.
at::Tensor device_budget_schedule(const LayerRule& rule, int64_t H, int64_t S,
                                  const at::Device& device) {
  const BudgetSchedule& sch = rule.top_k;
  const int64_t NB = sch.n_bands();
  std::vector<int32_t> host(static_cast<size_t>(NB + H * NB));
  for (int64_t b = 0; b < NB; ++b)
    host[static_cast<size_t>(b)] =
        static_cast<int32_t>(std::min<int64_t>(sch.band_start[static_cast<size_t>(b)], INT_MAX));
  for (int64_t h = 0; h < H; ++h)
    for (int64_t b = 0; b < NB; ++b)
      host[static_cast<size_t>(NB + h * NB + b)] = static_cast<int32_t>(
          std::clamp<int64_t>(sch.k[static_cast<size_t>(h)][static_cast<size_t>(b)], 1, S));
  struct Entry {
    std::vector<int32_t> host;
    at::Tensor dev;
  };
  static std::mutex mu;
  static std::unordered_map<std::string, Entry> cache;
  const std::string key = std::to_string(reinterpret_cast<uintptr_t>(&rule)) + "/" + device.str();
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(key);
  if (it != cache.end() && it->second.host == host) return it->second.dev;
  if (cache.size() > 4096) cache.clear();
  at::Tensor dev = at::tensor(host, at::kInt).to(device);
  cache[key] = Entry{std::move(host), dev};
  return dev;
}

at::Tensor fused_attention_cuda(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                double scale, const LayerRule& rule, at::Tensor* q_reads,
                                at::Tensor* kv_reads) {
  if (rule.kind != SparsityKind::kTopK || !q.is_cuda() || !k.is_cuda() || !v.is_cuda()) return {};
  const auto st = q.scalar_type();
  if (k.scalar_type() != st || v.scalar_type() != st) return {};
  cuda::ElemType type;
  if (!kernel_elem_type(st, &type)) return {};
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3);
  const int64_t Hkv = k.size(1), S = k.size(2);
  if (D < 1 || D > 256 || S >= INT_MAX || B > 65535 || Hkv > 65535) return {};
  if (rule.top_k.n_head() != H) return {};
  const at::Tensor qc = q.stride(3) == 1 ? q : q.contiguous();
  const at::Tensor kc = k.stride(3) == 1 ? k : k.contiguous();
  const at::Tensor vc = v.stride(3) == 1 ? v : v.contiguous();
  const at::Tensor sched = device_budget_schedule(rule, H, S, q.device());
  at::Tensor out = at::empty({B, H, T, D}, q.options());
  at::Tensor counts = at::zeros({H + Hkv}, q.options().dtype(at::kLong));

  cuda::TopKAttentionArgs a;
  a.q = qc.data_ptr(), a.k = kc.data_ptr(), a.v = vc.data_ptr(), a.out = out.data_ptr();
  a.type = type;
  a.B = static_cast<int>(B), a.H = static_cast<int>(H), a.Hkv = static_cast<int>(Hkv);
  a.T = static_cast<int>(T), a.S = static_cast<int>(S), a.D = static_cast<int>(D);
  a.q_sb = qc.stride(0), a.q_sh = qc.stride(1), a.q_st = qc.stride(2);
  a.k_sb = kc.stride(0), a.k_sh = kc.stride(1), a.k_ss = kc.stride(2);
  a.v_sb = vc.stride(0), a.v_sh = vc.stride(1), a.v_ss = vc.stride(2);
  a.scale = static_cast<float>(scale);
  a.NB = static_cast<int>(rule.top_k.n_bands());
  a.band_start = sched.data_ptr<int32_t>();
  a.budget = a.band_start + a.NB;
  auto* c = reinterpret_cast<unsigned long long*>(counts.data_ptr<int64_t>());
  a.q_reads = c;
  a.kv_reads = c + H;
  if (!cuda::topk_attention_supported(a)) return {};
  at::Tensor scratch;  // (the caching allocator: reused by this stream's next call)
  if (const int64_t n = cuda::topk_attention_scratch_bytes(a); n > 0) {
    scratch = at::empty({n}, q.options().dtype(at::kByte));
    a.scratch = scratch.data_ptr();
  }
  if (const char* err = cuda::topk_attention(a, at::cuda::getCurrentCUDAStream().stream()))
    throw std::runtime_error(std::string("CUDA top-k attention kernel: ") + err);
  *q_reads = counts.narrow(0, 0, H).to(at::kDouble);
  *kv_reads = counts.narrow(0, H, Hkv).to(at::kDouble);
  return out;
}

#endif

}  // namespace csa
