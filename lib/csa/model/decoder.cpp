#include "csa/model/decoder.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <climits>
#include <cmath>

#include "csa/core/error.h"
#include "csa/core/profile.h"

#ifdef CSA_WITH_CUDA_KERNELS
#include <ATen/cuda/CUDAContext.h>

#include "csa/attention/fused_cuda.h"  // kernel_elem_type
#include "csa/model/norm_cuda_kernel.h"
#endif

namespace csa {
namespace {

at::Tensor linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  return b.defined() ? at::linear(x, w, b) : at::linear(x, w);
}

// RMSNorm of float32 CPU rows [N, C] in one pass per row, the operations of the tensor form
// below: mean of squares, rsqrt(mean + eps) as 1 / sqrt, x · r, then w · (x · r). The sum of
// squares is accumulated in a different order than ATen's mean, so results may differ from it
// in the last bit.
at::Tensor rms_norm_cpu(const at::Tensor& x, const at::Tensor& w, double eps) {
  const int64_t C = x.size(-1), N = x.numel() / C;
  at::Tensor xc = x.contiguous();
  at::Tensor out = at::empty_like(xc);
  const float* xp = xc.data_ptr<float>();
  const float* wp = w.data_ptr<float>();
  float* op = out.data_ptr<float>();
  at::parallel_for(0, N, 64, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n) {
      const float* xi = xp + n * C;
      float* o = op + n * C;
      float acc[16] = {};
      int64_t c = 0;
      for (; c + 16 <= C; c += 16)
        for (int u = 0; u < 16; ++u) acc[u] += xi[c + u] * xi[c + u];
      float sum = 0;
      for (float a : acc) sum += a;
      for (; c < C; ++c) sum += xi[c] * xi[c];
      const float var = sum / static_cast<float>(C);
      const float r = 1.0f / std::sqrt(var + static_cast<float>(eps));
      for (int64_t i = 0; i < C; ++i) o[i] = wp[i] * (xi[i] * r);
    }
  });
  return out;
}

at::Tensor activate(const at::Tensor& x, Activation a) {
  switch (a) {
    case Activation::kGeluTanh:
      return at::gelu(x, "tanh");  // gelu_new / gelu_pytorch_tanh
    case Activation::kGeluErf:
      return at::gelu(x);
    case Activation::kSilu:
      return at::silu(x);
    case Activation::kRelu:
      return at::relu(x);
  }
  return x;
}

}  // namespace

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& w, double eps, bool allow_kernel) {
  // LlamaRMSNorm / Qwen2RMSNorm: float32 statistics, weight * x.to(input_dtype).
  if (x.is_cpu() && x.scalar_type() == at::kFloat && w.scalar_type() == at::kFloat &&
      w.is_contiguous())
    return rms_norm_cpu(x, w, eps);
#ifdef CSA_WITH_CUDA_KERNELS
  cuda::ElemType type;
  if (allow_kernel && x.is_cuda() && w.device() == x.device() &&
      w.scalar_type() == x.scalar_type() && w.is_contiguous() && w.numel() == x.size(-1) &&
      x.size(-1) <= INT_MAX && kernel_elem_type(x.scalar_type(), &type)) {
    at::Tensor xc = x.contiguous();
    at::Tensor out = at::empty_like(xc);
    cuda::RmsNormArgs a;
    a.x = xc.data_ptr(), a.w = w.data_ptr(), a.out = out.data_ptr(), a.type = type;
    a.C = static_cast<int>(x.size(-1)), a.N = x.numel() / std::max<int64_t>(a.C, 1);
    a.eps = static_cast<float>(eps);
    if (const char* err = cuda::rms_norm(a, at::cuda::getCurrentCUDAStream().stream()))
      throw Error(ErrorKind::kInternal, std::string("CUDA RMSNorm kernel: ") + err);
    return out;
  }
#else
  (void)allow_kernel;
#endif
  at::Tensor xf = x.to(at::kFloat);
  at::Tensor var = xf.pow(2).mean(-1, /*keepdim=*/true);
  return w * (xf * at::rsqrt(var + eps)).to(x.scalar_type());
}

Decoder::Decoder(const Model& model, AttentionOptions attention)
    : model_(model), attention_(attention) {
  if (!model.config.learned_positions())
    rope_ = RopeTable(model.config.rope, model.config.n_ctx, model.device);
}

at::Tensor Decoder::norm(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) const {
  CSA_PROFILE_SCOPE("forward/norm");
  const ModelConfig& c = model_.config;
  if (c.norm == NormKind::kLayerNorm) return at::layer_norm(x, {c.d_model}, w, b, c.norm_eps);
  return rms_norm(x, w, c.norm_eps);
}

at::Tensor Decoder::mlp(const LayerWeights& l, const at::Tensor& x) const {
  const ModelConfig& c = model_.config;
  at::Tensor up;
  {
    CSA_PROFILE_SCOPE("forward/mlp_up");
    up = linear(x, l.up_w, l.up_b);  // [B, T, F] or [B, T, 2F] (gate, up)
  }
  at::Tensor h;
  {
    CSA_PROFILE_SCOPE("forward/mlp_act");
    if (c.gated_mlp) {
      h = activate(up.narrow(-1, 0, c.d_ff), c.activation) * up.narrow(-1, c.d_ff, c.d_ff);
    } else {
      h = activate(up, c.activation);
    }
  }
  CSA_PROFILE_SCOPE("forward/mlp_down");
  return linear(h, l.down_w, l.down_b);  // [B, T, C]
}

at::Tensor Decoder::finish_layer(const LayerWeights& l, const at::Tensor& x, at::Tensor a,
                                 int64_t B, int64_t T) const {
  const ModelConfig& c = model_.config;
  {
    CSA_PROFILE_SCOPE("forward/out");
    a = a.transpose(1, 2).reshape({B, T, c.n_head * c.head_dim});
    a = linear(a, l.out_w, l.out_b);  // [B, T, C]
  }
  if (c.parallel_residual) {
    // GPTNeoXLayer: x + attn(ln1(x)) + mlp(ln2(x))
    at::Tensor m = mlp(l, norm(x, l.norm2_w, l.norm2_b));
    return m + a + x;
  }
  at::Tensor y = x + a;
  return y + mlp(l, norm(y, l.norm2_w, l.norm2_b));
}

// One decode step under a page rule, with its reads reported to the hook: per query head the
// keys of its pages, per KV head the keys of the union of its group's pages.
at::Tensor Decoder::paged_step(const at::Tensor& q, const PagedKvCache& pc, const ModelConfig& c,
                               int layer, const LayerRule& rule, AttentionHook* hook) const {
  DecodeSelection sel;
  at::Tensor a = decode_attend(q, pc, c.attn_scale, &rule, {}, &sel);
  hook->count_reads(layer, sel.reads.sum(0).to(at::kDouble),
                    sel.kv_reads(c.n_head_kv, pc.page(), pc.length()).sum(0));
  return a;
}

at::Tensor Decoder::hidden(const at::Tensor& tokens, AttentionHook* hook, KvCache* cache) const {
  const ModelConfig& c = model_.config;
  CSA_CHECK(tokens.dim() == 2, "tokens must be [B, T]");
  const int64_t T = tokens.size(1);
  const int64_t pos0 = cache != nullptr ? cache->length : 0;
  if (pos0 + T > c.n_ctx)
    throw InputError("sequence of " + std::to_string(pos0 + T) + " positions exceeds the model's " +
                     std::to_string(c.n_ctx) + " (max_position_embeddings)");
  if (tokens.numel() > 0 && tokens.is_cpu()) {  // on the host: no wait for the device
    int64_t lo = tokens.min().item<int64_t>(), hi = tokens.max().item<int64_t>();
    if (lo < 0 || hi >= c.vocab_size)
      throw InputError("token id " + std::to_string(lo < 0 ? lo : hi) + " is outside the model's " +
                       "vocabulary of " + std::to_string(c.vocab_size));
  }
  at::Tensor ids = tokens.to(model_.device, at::kLong);
  CSA_PROFILE_SCOPE("forward/hidden");
  if (cache != nullptr && cache->page == 0 && cache->k.empty()) {
    cache->k.resize(static_cast<size_t>(c.n_layer));
    cache->v.resize(static_cast<size_t>(c.n_layer));
  }
  if (cache != nullptr && cache->page > 0 && cache->paged.empty())
    cache->paged.assign(static_cast<size_t>(c.n_layer), PagedKvCache(cache->page));
  if (cache != nullptr && cache->graphs && T == 1 && graphable(*cache, hook))
    return graph_step(ids, hook, cache);
  at::Tensor out = layers(ids, hook, cache, pos0, {});
  if (cache != nullptr) cache->length = pos0 + T;
  return out;
}

at::Tensor Decoder::layers(const at::Tensor& ids, AttentionHook* hook, KvCache* cache, int64_t pos0,
                           const at::Tensor& position) const {
  const ModelConfig& c = model_.config;
  const Weights& w = model_.weights;
  const int64_t B = ids.size(0), T = ids.size(1);
  const int64_t H = c.n_head, Hkv = c.n_head_kv, D = c.head_dim;
  const bool device_pos = position.defined();
  at::Tensor x = at::embedding(w.tok_emb, ids);  // [B, T, C]
  if (c.learned_positions())
    x = x + (device_pos ? w.pos_emb.index_select(0, position) : w.pos_emb.narrow(0, pos0, T));
  for (int i = 0; i < c.n_layer; ++i) {
    const LayerWeights& l = w.layers[static_cast<size_t>(i)];
    at::Tensor h = norm(x, l.norm1_w, l.norm1_b);
    at::Tensor qkv;
    {
      CSA_PROFILE_SCOPE("forward/qkv");
      qkv = linear(h, l.qkv_w, l.qkv_b);  // [B, T, (H + 2Hkv) * D]
    }
    at::Tensor q = qkv.narrow(-1, 0, H * D).view({B, T, H, D}).transpose(1, 2);  // [B, H, T, D]
    at::Tensor k = qkv.narrow(-1, H * D, Hkv * D).view({B, T, Hkv, D}).transpose(1, 2);
    at::Tensor v = qkv.narrow(-1, (H + Hkv) * D, Hkv * D).view({B, T, Hkv, D}).transpose(1, 2);
    if (!c.learned_positions()) {
      CSA_PROFILE_SCOPE("forward/rope");
      q = device_pos ? rope_.apply(q, position) : rope_.apply(q, pos0);
      k = device_pos ? rope_.apply(k, position) : rope_.apply(k, pos0);
    }
    if (cache != nullptr && cache->page > 0) {
      PagedKvCache& pc = cache->paged[static_cast<size_t>(i)];
      if (pc.length() == 0) pc.reserve(cache->reserve > 0 ? cache->reserve : c.n_ctx, k);
      if (device_pos)
        pc.append_at(k, v, position);
      else
        pc.append(k, v);
      if (T == 1) {
        CSA_PROFILE_SCOPE("forward/attention");
        const bool hooked = hook != nullptr && hook->active(i);
        const LayerRule* rule = hooked ? hook->rule(i) : nullptr;
        DecodeOptions o = cache->decode;
        o.position = position;
        at::Tensor a = rule != nullptr && hook->counts_reads()
                           ? paged_step(q, pc, c, i, *rule, hook)
                           : decode_attend(q, pc, c.attn_scale, rule, o);
        x = finish_layer(l, x, a, B, T);
        if (hook != nullptr && hook->active(i) && hook->observes(i)) hook->observe_residual(i, x);
        continue;
      }
      k = pc.keys();
      v = pc.values();
    } else if (cache != nullptr) {
      auto& ck = cache->k[static_cast<size_t>(i)];
      auto& cv = cache->v[static_cast<size_t>(i)];
      ck = ck.defined() ? at::cat({ck, k}, 2) : k.contiguous();  // [B, Hkv, S, D]
      cv = cv.defined() ? at::cat({cv, v}, 2) : v.contiguous();
      k = ck;
      v = cv;
    }
    at::Tensor a;  // q, k, v go as views (attend copies only where a path needs it)
    {
      CSA_PROFILE_SCOPE("forward/attention");
      a = attend(q, k, v, c.attn_scale, i, hook, attention_);  // [B, H, T, D]
    }
    x = finish_layer(l, x, a, B, T);
    if (hook != nullptr && hook->active(i) && hook->observes(i)) hook->observe_residual(i, x);
  }
  return norm(x, w.final_norm_w, w.final_norm_b);
}

// A captured one-token step (KvCache::graphs): its inputs (token ids, the position) and output
// live at fixed device addresses; `key` says what the capture assumed.
struct DecodeStepGraph {
  struct Key {
    const Decoder* decoder = nullptr;
    const AttentionHook* hook = nullptr;
    int64_t batch = 0;
    std::vector<const void*> storage;  // every layer's key and value storage
    bool operator==(const Key& o) const {
      return decoder == o.decoder && hook == o.hook && batch == o.batch && storage == o.storage;
    }
  };
  Key key;
  DecodeGraph graph;
  bool warm = false;    // one eager step with the graph's kernels ran (lazy set-up done)
  at::Tensor tokens;    // [B, 1] int64
  at::Tensor position;  // [1] int64: the step's position
  at::Tensor out;       // [B, 1, C]
};

bool Decoder::graphable(const KvCache& cache, AttentionHook* hook) const {
  const ModelConfig& c = model_.config;
  if (cache.page <= 0 || !model_.device.is_cuda() || !decode_kernels_built()) return false;
  if (cache.paged.empty() || cache.paged[0].length() == 0) return false;  // the prompt first
  for (const PagedKvCache& pc : cache.paged)
    if (pc.length() != cache.length || pc.length() + 1 > pc.capacity()) return false;
  const at::ScalarType dtype = cache.paged[0].key_storage().scalar_type();
  for (int i = 0; i < c.n_layer; ++i) {
    const bool hooked = hook != nullptr && hook->active(i);
    if (hooked && hook->observes(i)) return false;
    const LayerRule* rule = hooked ? hook->rule(i) : nullptr;
    if (rule != nullptr && hook->counts_reads()) return false;  // host-side accounting
    if (!decode_kernels_take(dtype, c.n_head, c.n_head_kv, c.head_dim, cache.page,
                             cache.paged[0].capacity(), rule))
      return false;
  }
  return true;
}

at::Tensor Decoder::graph_step(const at::Tensor& ids, AttentionHook* hook, KvCache* cache) const {
  const int64_t pos0 = cache->length;
  DecodeStepGraph::Key key;
  key.decoder = this, key.hook = hook, key.batch = ids.size(0);
  for (const PagedKvCache& pc : cache->paged) {
    key.storage.push_back(pc.key_storage().data_ptr());
    key.storage.push_back(pc.value_storage().data_ptr());
  }
  if (cache->graph == nullptr || !(cache->graph->key == key)) {
    cache->graph = std::make_shared<DecodeStepGraph>();
    DecodeStepGraph& g = *cache->graph;
    g.key = key;
    g.tokens = at::empty({ids.size(0), 1}, ids.options());
    g.position = at::empty({1}, ids.options());
  }
  DecodeStepGraph& g = *cache->graph;
  g.tokens.copy_(ids);
  g.position.fill_(pos0);
  auto set_lengths = [&](int64_t n) {
    for (PagedKvCache& pc : cache->paged) pc.set_length(n);
    cache->length = n;
  };
  if (!g.warm) {  // eager, through the graph's kernels: lazy set-up happens outside the capture
    g.warm = true;
    at::Tensor out = layers(g.tokens, hook, cache, pos0, g.position);
    set_lengths(pos0 + 1);
    return out;
  }
  if (!g.graph.captured()) {
    g.graph.capture([&] { g.out = layers(g.tokens, hook, cache, pos0, g.position); });
    set_lengths(pos0);  // the capture ran nothing
  }
  g.graph.replay();
  set_lengths(pos0 + 1);
  return g.out.clone();  // the graph's output is overwritten by the next replay
}

at::Tensor Decoder::logits(const at::Tensor& hidden) const {
  CSA_PROFILE_SCOPE("lm_head");
  const Weights& w = model_.weights;
  return linear(hidden, w.lm_head, w.lm_head_b).to(at::kFloat);
}

at::Tensor Decoder::forward(const at::Tensor& tokens, AttentionHook* hook, KvCache* cache) const {
  return logits(hidden(tokens, hook, cache));
}

}  // namespace csa
