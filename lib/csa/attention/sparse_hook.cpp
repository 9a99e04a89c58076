#include "csa/attention/sparse_hook.h"

#include "csa/core/error.h"

namespace csa {

SparseAttentionHook::SparseAttentionHook(SparsitySpec spec, int64_t n_layer, int64_t n_head,
                                         int64_t n_head_kv, int64_t max_context)
    : spec_(std::move(spec)), n_layer_(n_layer), n_head_(n_head), n_head_kv_(n_head_kv) {
  auto check_dims = [&](size_t rows, const std::vector<size_t>& cols, const char* what) {
    if (rows != static_cast<size_t>(n_layer))
      throw InputError(std::string(what) + " has " + std::to_string(rows) + " layers, the model " +
                       std::to_string(n_layer));
    for (size_t c : cols)
      if (c != static_cast<size_t>(n_head))
        throw InputError(std::string(what) + " has " + std::to_string(c) +
                         " heads in a layer, the model " + std::to_string(n_head));
  };
  if (spec_.kind == SparsityKind::kTopK) {
    std::vector<size_t> cols;
    for (const auto& s : spec_.k) cols.push_back(s.k.size());
    check_dims(spec_.k.size(), cols, "top-k budgets");
    for (int64_t l = 0; l < n_layer; ++l)
      for (int64_t h = 0; h < n_head; ++h)
        for (int64_t k : spec_.k[static_cast<size_t>(l)].k[static_cast<size_t>(h)])
          if (k < 1)
            throw InputError("top-k budget of layer " + std::to_string(l) + " head " +
                             std::to_string(h) + " is " + std::to_string(k) + " (must be >= 1)");
  } else if (spec_.kind == SparsityKind::kTopP) {
    std::vector<size_t> cols;
    for (const auto& r : spec_.p) cols.push_back(r.size());
    check_dims(spec_.p.size(), cols, "top-p masses");
  }
  for (int64_t l = 0; l < n_layer; ++l) {
    rules_.push_back(spec_.layer_rule(l));
    active_.push_back(!rules_.back().reads_all(max_context));
  }
  tally_.init(n_layer, n_head, n_head_kv);
}

bool SparseAttentionHook::active(int layer) const {
  return layer >= 0 && layer < n_layer_ && active_[static_cast<size_t>(layer)];
}

const LayerRule* SparseAttentionHook::rule(int layer) const {
  return active(layer) ? &rules_[static_cast<size_t>(layer)] : nullptr;
}

void SparseAttentionHook::reset_tally() {
  pending_.clear();
  tally_.init(n_layer_, n_head_, n_head_kv_);
}

void SparseAttentionHook::count_pass(int64_t batch, int64_t length) {
  const double dense = dense_reads(batch, length);
  for (int64_t l = 0; l < n_layer_; ++l) {
    auto L = static_cast<size_t>(l);
    for (int64_t h = 0; h < n_head_; ++h) {
      tally_.q_dense[L][static_cast<size_t>(h)] += dense;
      if (!active_[L]) tally_.q_sparse[L][static_cast<size_t>(h)] += dense;
    }
    for (int64_t g = 0; g < n_head_kv_; ++g) {
      tally_.kv_dense[L][static_cast<size_t>(g)] += dense;
      if (!active_[L]) tally_.kv_sparse[L][static_cast<size_t>(g)] += dense;
    }
  }
}

void SparseAttentionHook::count_reads(int layer, const at::Tensor& q, const at::Tensor& kv) {
  CSA_CHECK(q.numel() == n_head_ && kv.numel() == n_head_kv_, "reads count shape");
  pending_.push_back({layer, {q, kv}});
  if (q.is_cpu() || pending_.size() >= 256) flush();  // bounded queue on devices
}

void SparseAttentionHook::flush() {
  for (auto& [layer, counts] : pending_) {
    at::Tensor q = counts.first.to(at::kCPU, at::kDouble).contiguous();
    at::Tensor kv = counts.second.to(at::kCPU, at::kDouble).contiguous();
    auto L = static_cast<size_t>(layer);
    const double* qp = q.data_ptr<double>();
    const double* kp = kv.data_ptr<double>();
    for (int64_t h = 0; h < n_head_; ++h) tally_.q_sparse[L][static_cast<size_t>(h)] += qp[h];
    for (int64_t g = 0; g < n_head_kv_; ++g) tally_.kv_sparse[L][static_cast<size_t>(g)] += kp[g];
  }
  pending_.clear();
}

const ReadsTally& SparseAttentionHook::tally() {
  flush();
  return tally_;
}

}  // namespace csa
