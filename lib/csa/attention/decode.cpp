#include "csa/attention/decode.h"

#include <algorithm>
#include <climits>
#include <string>

#include "csa/attention/pages.h"
#include "csa/core/error.h"

#ifdef CSA_WITH_CUDA_KERNELS
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>

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

namespace {

#ifdef CSA_WITH_CUDA_KERNELS
// One position [B, Hkv, 1, D] into the storage by the append kernel; false when the kernel does
// not take these tensors (then the tensor path does it).
bool append_kernel(const at::Tensor& k, const at::Tensor& v, at::Tensor& ks, at::Tensor& vs,
                   at::Tensor& mn, at::Tensor& mx, int64_t page, int64_t pos,
                   const at::Tensor& position) {
  cuda::ElemType type;
  if (!k.is_cuda() || !v.is_cuda() || k.size(2) != 1 || k.stride(3) != 1 || v.stride(3) != 1 ||
      v.scalar_type() != k.scalar_type() || !kernel_elem_type(k.scalar_type(), &type))
    return false;
  cuda::PagedAppendArgs a;
  a.k = k.data_ptr(), a.v = v.data_ptr();
  a.k_sb = k.stride(0), a.k_sh = k.stride(1), a.v_sb = v.stride(0), a.v_sh = v.stride(1);
  a.kc = ks.data_ptr(), a.vc = vs.data_ptr(), a.kmin = mn.data_ptr(), a.kmax = mx.data_ptr();
  a.type = type;
  a.B = static_cast<int>(k.size(0)), a.Hkv = static_cast<int>(k.size(1));
  a.D = static_cast<int>(k.size(3)), a.page = static_cast<int>(page);
  a.capacity = ks.size(2);
  a.pos = pos;
  if (position.defined()) a.position = position.data_ptr<int64_t>();
  if (const char* err = cuda::paged_append(a, at::cuda::getCurrentCUDAStream().stream()))
    throw std::runtime_error(std::string("CUDA paged append kernel: ") + err);
  return true;
}
#endif

}  // namespace

void PagedKvCache::append(const at::Tensor& k, const at::Tensor& v) {
  CSA_CHECK(k.dim() == 4 && v.sizes() == k.sizes(), "paged cache: k and v must be [B, Hkv, T, D]");
  if (k_.defined())
    CSA_CHECK(k.size(0) == k_.size(0) && k.size(1) == k_.size(1) && k.size(3) == k_.size(3) &&
                  k.scalar_type() == k_.scalar_type() && k.device() == k_.device(),
              "paged cache: appended keys differ in shape, dtype or device");
  const int64_t T = k.size(2);
  if (T == 0) return;
  if (length_ + T > capacity()) grow(std::max(length_ + T, 2 * capacity()), k);
#ifdef CSA_WITH_CUDA_KERNELS
  if (T == 1 && append_kernel(k, v, k_, v_, kmin_, kmax_, page_, length_, {})) {
    length_ += 1;
    return;
  }
#endif
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

void PagedKvCache::append_at(const at::Tensor& k, const at::Tensor& v, const at::Tensor& position) {
  CSA_CHECK(k.dim() == 4 && v.sizes() == k.sizes() && k.size(2) == 1,
            "paged cache: append_at takes one position [B, Hkv, 1, D]");
  CSA_CHECK(position.defined() && position.scalar_type() == at::kLong && position.numel() == 1 &&
                position.device() == k.device(),
            "paged cache: append_at's position must be int64 [1] on the keys' device");
  if (!k_.defined() || length_ + 1 > capacity())
    throw UsageError("paged cache: append_at needs room for the position (reserve() first)");
  CSA_CHECK(k.size(0) == k_.size(0) && k.size(1) == k_.size(1) && k.size(3) == k_.size(3) &&
                k.scalar_type() == k_.scalar_type() && k.device() == k_.device(),
            "paged cache: appended keys differ in shape, dtype or device");
#ifdef CSA_WITH_CUDA_KERNELS
  if (append_kernel(k, v, k_, v_, kmin_, kmax_, page_, length_, position)) {
    length_ += 1;
    return;
  }
#endif
  throw UsageError("paged cache: append_at needs the CUDA kernels (a GPU build, CUDA tensors)");
}

void PagedKvCache::set_length(int64_t positions) {
  CSA_CHECK(positions >= 0 && positions <= capacity(), "paged cache: length beyond the storage");
  length_ = positions;
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
    keep = select_pages(page_scores(scores, qf, s, scale, *rule), *rule, S - 1, S, Hkv);
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
// The select kernel holds a key per page of the capacity in shared memory.
constexpr int64_t kMaxSelectSmem = 200 * 1024;

// The CUDA kernels; an undefined tensor when the call is not one they handle.
at::Tensor decode_kernels(const at::Tensor& q, const PagedKvCache& cache, double scale,
                          const LayerRule* rule, const DecodeOptions& o,
                          DecodeSelection* selection) {
  const at::Tensor& ks = cache.key_storage();
  if (!q.is_cuda() || !ks.is_cuda() || q.scalar_type() != ks.scalar_type()) return {};
  const int64_t B = q.size(0), H = q.size(1), D = q.size(3), S = cache.length();
  const int64_t Hkv = ks.size(1), P = cache.page(), cap = cache.capacity(), G = H / Hkv;
  // Shapes and rules the kernels take, and 16-byte aligned query rows; others take the reference.
  if (!decode_kernels_take(q.scalar_type(), H, Hkv, D, P, cap, rule) || q.stride(3) != 1 ||
      (q.stride(0) * q.element_size()) % 16 != 0 || (q.stride(1) * q.element_size()) % 16 != 0 ||
      reinterpret_cast<uintptr_t>(q.data_ptr()) % 16 != 0)
    return {};
  cuda::ElemType type;
  kernel_elem_type(q.scalar_type(), &type);  // decode_kernels_take checked it
  cuda::PagedDecodeArgs a;
  a.q = q.data_ptr(), a.k = ks.data_ptr(), a.v = cache.value_storage().data_ptr();
  a.kmin = cache.kmin_storage().data_ptr(), a.kmax = cache.kmax_storage().data_ptr();
  a.type = type;
  a.B = static_cast<int>(B), a.H = static_cast<int>(H), a.Hkv = static_cast<int>(Hkv);
  a.D = static_cast<int>(D);
  a.q_sb = q.stride(0), a.q_sh = q.stride(1);
  a.capacity = cap, a.S = static_cast<int>(S), a.page = static_cast<int>(P);
  a.scale = static_cast<float>(scale);
  if (rule != nullptr) {
    a.spread = static_cast<float>(rule->select.spread);
    a.group = rule->select.group;
  }
  const int64_t pages = (S + P - 1) / P;
  if (o.position.defined()) {
    CSA_CHECK(o.position.scalar_type() == at::kLong && o.position.numel() == 1 &&
                  o.position.device() == q.device(),
              "decode_attend: the position must be int64 [1] on the query's device");
    a.position = o.position.data_ptr<int64_t>();
  }
  at::Tensor sched;
  if (rule != nullptr) {
    sched = device_budget_schedule(*rule, H, INT_MAX, q.device());
    a.NB = static_cast<int>(rule->top_k.n_bands());
    a.band_start = sched.data_ptr<int32_t>();
    a.budget = a.band_start + a.NB;
  }
  // One wave of attend blocks, each with at least a page per warp; with a device position the
  // grid must serve every length up to the capacity. A sparse step reads at most the pages of
  // the largest budget (per head, or per group with `group`; for a group of per-head choices G
  // times that): fewer blocks, about `kept_pages_per_warp` of them per warp (1 by default: on the
  // H200 more warps in flight beat paying each warp's set-up and merge for fewer pages; docs/
  // decoding.md).
  int64_t span = o.position.defined() ? cap / P : pages;
  if (rule != nullptr) {
    CSA_CHECK(o.kept_pages_per_warp >= 1, "decode: kept_pages_per_warp must be >= 1");
    int64_t kmax = 0;
    for (const auto& per_band : rule->top_k.k)
      for (int64_t kb : per_band) kmax = std::max(kmax, kb);
    const PageCount most = page_count(kmax, cap - 1, P);  // at the capacity's last position
    if (!most.all) {
      const int64_t per_head = most.extra + 2;  // and the sink and the newest page
      const int64_t kept = rule->select.group ? per_head : G * per_head;
      if (kept < span) span = std::max<int64_t>(1, kept / o.kept_pages_per_warp);
    }
  }
  a.splits = o.splits > 0 ? o.splits : cuda::decode_auto_splits(a, span);
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

bool decode_kernels_take(at::ScalarType dtype, int64_t n_head, int64_t n_head_kv, int64_t head_dim,
                         int64_t page, int64_t capacity, const LayerRule* rule) {
#ifdef CSA_WITH_CUDA_KERNELS
  cuda::ElemType type;
  if (!kernel_elem_type(dtype, &type) || n_head_kv < 1 || n_head % n_head_kv != 0) return false;
  if (capacity >= INT_MAX || capacity / page * 4 > kMaxSelectSmem) return false;
  if (!cuda::paged_decode_supports(static_cast<int>(head_dim), static_cast<int>(n_head / n_head_kv),
                                   static_cast<int>(at::elementSize(dtype))))
    return false;
  if (rule == nullptr || rule->kind == SparsityKind::kDense) return true;
  return rule->kind == SparsityKind::kTopK && rule->select.page == page && !rule->select.exact &&
         !rule->select.oracle && rule->top_k.n_head() == n_head;
#else
  (void)dtype, (void)n_head, (void)n_head_kv, (void)head_dim, (void)page, (void)capacity;
  (void)rule;
  return false;
#endif
}

#ifdef CSA_WITH_CUDA_KERNELS
struct DecodeGraph::Impl {
  at::cuda::CUDAGraph graph;
};
#else
struct DecodeGraph::Impl {};
#endif

DecodeGraph::DecodeGraph() : impl_(std::make_unique<Impl>()) {}
DecodeGraph::~DecodeGraph() = default;

void DecodeGraph::capture(const std::function<void()>& fn) {
#ifdef CSA_WITH_CUDA_KERNELS
  CSA_CHECK(!captured_, "DecodeGraph: captured already");
  // Graphs are captured on a stream other than the default one; the side stream starts after
  // the current stream's work and the current stream waits for the capture to end.
  const at::cuda::CUDAStream main = at::cuda::getCurrentCUDAStream();
  const at::cuda::CUDAStream side = at::cuda::getStreamFromPool();
  at::cuda::CUDAEvent ready;
  ready.record(main);
  ready.block(side);
  {
    const c10::cuda::CUDAStreamGuard guard(side);
    impl_->graph.capture_begin();
    try {
      fn();
    } catch (...) {
      try {
        impl_->graph.capture_end();
      } catch (...) {  // the capture is invalid anyway; the first error is the one to report
      }
      throw;
    }
    impl_->graph.capture_end();
  }
  at::cuda::CUDAEvent done;
  done.record(side);
  done.block(main);
  captured_ = true;
#else
  (void)fn;
  throw UsageError("CUDA graphs need a GPU build with the CUDA decode kernels");
#endif
}

void DecodeGraph::replay() {
#ifdef CSA_WITH_CUDA_KERNELS
  CSA_CHECK(captured_, "DecodeGraph: replay before capture");
  impl_->graph.replay();
#else
  throw UsageError("CUDA graphs need a GPU build with the CUDA decode kernels");
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
#endif
  if (options.position.defined())
    throw UsageError("decode_attend: a device position needs the CUDA decode kernels");
  return decode_reference(q, cache, scale, rule, selection);
}

}  // namespace csa
