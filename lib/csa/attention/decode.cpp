#include "csa/attention/decode.h"

#include <algorithm>
#include <climits>
#include <string>

#include "csa/attention/pages.h"
#include "csa/core/error.h"

#ifdef CSA_WITH_CUDA_KERNELS
#include <ATen/cuda/CUDAContext.h>

#include "csa/attention/decode_cuda_kernel.h"
#include "csa/attention/fused_cuda.h"
#endif

namespace csa {

PagedKvCache::PagedKvCache(int64_t page) : page_(page) {
  if (page < 1 || page > 256 || (page & (page - 1)) != 0)
    throw UsageError("page size " + std::to_string(page) +
                     ": a paged KV cache needs a power of two in 1..256");
}

void PagedKvCache::grow(int64_t positions, const at::Tensor& like) {
  const int64_t cap = (positions + page_ - 1) / page_ * page_;
  const int64_t B = like.size(0), Hkv = like.size(1), D = like.size(3);
  at::Tensor k = at::empty({B, Hkv, cap, D}, like.options());
  at::Tensor v = at::empty({B, Hkv, cap, D}, like.options());
  at::Tensor mn = at::empty({B, Hkv, cap / page_, D}, like.options());
  at::Tensor mx = at::empty({B, Hkv, cap / page_, D}, like.options());
  if (length_ > 0) {
    k.narrow(2, 0, length_).copy_(keys());
    v.narrow(2, 0, length_).copy_(values());
    mn.narrow(2, 0, full_pages()).copy_(kmin());
    mx.narrow(2, 0, full_pages()).copy_(kmax());
  }
  k_ = k, v_ = v, kmin_ = mn, kmax_ = mx;
}

void PagedKvCache::reserve(int64_t positions, const at::Tensor& like_k) {
  if (positions > capacity()) grow(positions, like_k);
}

void PagedKvCache::append(const at::Tensor& k, const at::Tensor& v) {
  CSA_CHECK(k.dim() == 4 && v.sizes() == k.sizes(), "paged cache: k and v must be [B, Hkv, T, D]");
  if (k_.defined())
    CSA_CHECK(k.size(0) == k_.size(0) && k.size(1) == k_.size(1) && k.size(3) == k_.size(3) &&
                  k.scalar_type() == k_.scalar_type() && k.device() == k_.device(),
              "paged cache: appended keys differ in shape, dtype or device");
  const int64_t T = k.size(2);
  if (T == 0) return;
  if (length_ + T > capacity()) grow(std::max(length_ + T, 2 * capacity()), k);
  k_.narrow(2, length_, T).copy_(k);
  v_.narrow(2, length_, T).copy_(v);
  const int64_t first = length_ / page_, last = (length_ + T) / page_;
  if (last > first) {
    const int64_t B = k_.size(0), Hkv = k_.size(1), D = k_.size(3);
    at::Tensor full =
        k_.narrow(2, first * page_, (last - first) * page_).view({B, Hkv, last - first, page_, D});
    kmin_.narrow(2, first, last - first).copy_(std::get<0>(full.min(3)));
    kmax_.narrow(2, first, last - first).copy_(std::get<0>(full.max(3)));
  }
  length_ += T;
}

at::Tensor PagedKvCache::keys() const { return k_.narrow(2, 0, length_); }
at::Tensor PagedKvCache::values() const { return v_.narrow(2, 0, length_); }
at::Tensor PagedKvCache::kmin() const { return kmin_.narrow(2, 0, full_pages()); }
at::Tensor PagedKvCache::kmax() const { return kmax_.narrow(2, 0, full_pages()); }

at::Tensor DecodeSelection::kv_reads(int64_t n_head_kv, int64_t page, int64_t length) const {
  const int64_t B = keep.size(0), H = keep.size(1), np = keep.size(2);
  at::Tensor group = keep.view({B, n_head_kv, H / n_head_kv, np}).any(2);  // [B, Hkv, np]
  at::Tensor len = at::full({np}, static_cast<double>(page), keep.options().dtype(at::kDouble));
  len[np - 1].fill_(static_cast<double>(length - (np - 1) * page));  // the newest, partial page
  return group.to(at::kDouble).mul_(len).sum(2);
}

namespace {

// The reference: every score, pages.h's mask, softmax, P·V (float32).
at::Tensor decode_reference(const at::Tensor& q, const PagedKvCache& cache, double scale,
                            const LayerRule* rule, DecodeSelection* selection) {
  const int64_t B = q.size(0), H = q.size(1), D = q.size(3), S = cache.length();
  const int64_t Hkv = cache.keys().size(1), G = H / Hkv;
  at::Tensor k = cache.keys().to(at::kFloat), v = cache.values().to(at::kFloat);
  at::Tensor qf = q.to(at::kFloat);
  at::Tensor scores =
      at::matmul(qf.reshape({B, Hkv, G, D}), k.transpose(2, 3)).mul_(scale).view({B, H, 1, S});
  const int64_t pages = (S + cache.page() - 1) / cache.page();
  at::Tensor keep;
  if (rule != nullptr) {
    const PageSummaries s{cache.kmin().to(at::kFloat), cache.kmax().to(at::kFloat)};
    keep = select_pages(page_scores(scores, qf, s, scale, *rule), *rule, S - 1, S);
    mask_to_kept_pages(scores, keep, *rule, S - 1);
    keep = keep.view({B, H, pages});
  } else if (selection != nullptr) {
    keep = at::ones({B, H, pages}, q.options().dtype(at::kBool));
  }
  if (selection != nullptr) {
    selection->keep = keep;
    selection->reads = at::isfinite(scores).sum({2, 3}).to(at::kLong);
  }
  at::Tensor p = at::softmax(scores, -1);
  return at::matmul(p.view({B, Hkv, G, S}), v).view({B, H, 1, D}).to(q.scalar_type());
}

#ifdef CSA_WITH_CUDA_KERNELS
// The CUDA kernels; an undefined tensor when the call is not one they handle.
at::Tensor decode_kernels(const at::Tensor& q, const PagedKvCache& cache, double scale,
                          const LayerRule* rule, const DecodeOptions& o,
                          DecodeSelection* selection) {
  const at::Tensor& ks = cache.key_storage();
  if (!q.is_cuda() || !ks.is_cuda() || q.scalar_type() != ks.scalar_type()) return {};
  if (rule != nullptr && (rule->select.exact || rule->select.oracle)) return {};
  cuda::ElemType type;
  if (!kernel_elem_type(q.scalar_type(), &type)) return {};
  const int64_t B = q.size(0), H = q.size(1), D = q.size(3), S = cache.length();
  const int64_t Hkv = ks.size(1), P = cache.page(), cap = cache.capacity(), G = H / Hkv;
  // Shapes the kernels take (16-byte loads of q, K and V rows); others take the reference.
  if (!cuda::paged_decode_supports(static_cast<int>(D), static_cast<int>(G),
                                   static_cast<int>(q.element_size())) ||
      cap >= INT_MAX || cap / P * 4 > 200 * 1024 || q.stride(3) != 1 ||
      (q.stride(0) * q.element_size()) % 16 != 0 || (q.stride(1) * q.element_size()) % 16 != 0 ||
      reinterpret_cast<uintptr_t>(q.data_ptr()) % 16 != 0)
    return {};
  cuda::PagedDecodeArgs a;
  a.q = q.data_ptr(), a.k = ks.data_ptr(), a.v = cache.value_storage().data_ptr();
  a.kmin = cache.kmin_storage().data_ptr(), a.kmax = cache.kmax_storage().data_ptr();
  a.type = type;
  a.B = static_cast<int>(B), a.H = static_cast<int>(H), a.Hkv = static_cast<int>(Hkv);
  a.D = static_cast<int>(D);
  a.q_sb = q.stride(0), a.q_sh = q.stride(1);
  a.capacity = cap, a.S = static_cast<int>(S), a.page = static_cast<int>(P);
  a.scale = static_cast<float>(scale);
  const int64_t pages = (S + P - 1) / P;
  at::Tensor sched;
  if (rule != nullptr) {
    sched = device_budget_schedule(*rule, H, INT_MAX, q.device());
    a.NB = static_cast<int>(rule->top_k.n_bands());
    a.band_start = sched.data_ptr<int32_t>();
    a.budget = a.band_start + a.NB;
  }
  int splits = o.splits;
  if (splits <= 0) {  // about four blocks per SM, each with at least a page per warp
    const int sms = at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
    const int64_t want = (4 * sms + B * Hkv - 1) / (B * Hkv);
    splits = static_cast<int>(std::clamp<int64_t>(want, 1, std::max<int64_t>(1, pages / 4)));
  }
  a.splits = splits;
  at::Tensor ws = at::empty({cuda::decode_workspace_bytes(a)}, q.options().dtype(at::kByte));
  a.workspace = ws.data_ptr();
  at::Tensor out = at::empty({B, H, 1, D}, q.options());
  a.out = out.data_ptr();
  at::Tensor flags, reads;
  if (selection != nullptr && rule != nullptr) {
    flags = at::empty({B, Hkv, (cap + P - 1) / P, G}, q.options().dtype(at::kByte));
    reads = at::empty({B, H}, q.options().dtype(at::kInt));
    a.flags_out = flags.data_ptr<uint8_t>();
    a.q_reads = reads.data_ptr<int32_t>();
  }
  if (const char* err = cuda::paged_decode(a, at::cuda::getCurrentCUDAStream().stream()))
    throw std::runtime_error(std::string("CUDA paged decode kernels: ") + err);
  if (selection != nullptr) {
    if (rule == nullptr) {
      selection->keep = at::ones({B, H, pages}, q.options().dtype(at::kBool));
      selection->reads = at::full({B, H}, S, q.options().dtype(at::kLong));
    } else {
      selection->keep =
          flags.narrow(2, 0, pages).permute({0, 1, 3, 2}).reshape({B, H, pages}).ne(0);
      selection->reads = reads.to(at::kLong);
    }
  }
  return out;
}
#endif

}  // namespace

bool decode_kernels_built() {
#ifdef CSA_WITH_CUDA_KERNELS
  return true;
#else
  return false;
#endif
}

at::Tensor decode_attend(const at::Tensor& q, const PagedKvCache& cache, double scale,
                         const LayerRule* rule, const DecodeOptions& options,
                         DecodeSelection* selection) {
  CSA_CHECK(q.dim() == 4 && q.size(2) == 1 && cache.length() > 0,
            "decode_attend: one query row per batch row over a non-empty cache");
  const int64_t Hkv = cache.key_storage().size(1);
  CSA_CHECK(q.size(0) == cache.key_storage().size(0) && q.size(1) % Hkv == 0 &&
                q.size(3) == cache.key_storage().size(3),
            "decode_attend: query and cache shapes disagree");
  if (rule != nullptr && rule->kind == SparsityKind::kDense) rule = nullptr;
  if (rule != nullptr) {
    if (rule->kind != SparsityKind::kTopK)
      throw UsageError("paged decoding applies top_k policies, not " +
                       sparsity_kind_name(rule->kind));
    if (rule->select.page != cache.page())
      throw InputError("the policy selects '" + selection_name(rule->select) +
                       "' but the KV cache has pages of " + std::to_string(cache.page()) +
                       " positions (use --select page:" + std::to_string(cache.page()) + ")");
    CSA_CHECK(rule->top_k.n_head() == q.size(1), "decode_attend: rule and query heads disagree");
  }
#ifdef CSA_WITH_CUDA_KERNELS
  if (options.allow_kernel) {
    at::Tensor out = decode_kernels(q, cache, scale, rule, options, selection);
    if (out.defined()) return out;
  }
#else
  (void)options;
#endif
  return decode_reference(q, cache, scale, rule, selection);
}

}  // namespace csa
