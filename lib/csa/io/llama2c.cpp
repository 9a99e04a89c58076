#include "csa/io/llama2c.h"

#include <cstring>

#include "csa/core/error.h"
#include "csa/io/tensor_store.h"

namespace csa {
namespace {

struct Header {
  int32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
};

bool plausible(const Header& h) {
  auto ok = [](int32_t v, int32_t hi) { return v > 0 && v <= hi; };
  return ok(h.dim, 1 << 16) && ok(h.hidden_dim, 1 << 18) && ok(h.n_layers, 1024) &&
         ok(h.n_heads, 1024) && ok(h.n_kv_heads, 1024) && h.vocab_size != 0 &&
         std::abs(h.vocab_size) <= (1 << 22) && ok(h.seq_len, 1 << 22) && h.dim % h.n_heads == 0 &&
         h.n_heads % h.n_kv_heads == 0;
}

}  // namespace

bool is_llama2c_checkpoint(const std::string& path) {
  auto f = MappedFile::open(path);
  if (f->size() < sizeof(Header)) return false;
  Header h;
  std::memcpy(&h, f->data(), sizeof h);
  return plausible(h);
}

Llama2cCheckpoint read_llama2c(const std::string& path) {
  auto f = MappedFile::open(path);
  Header h{};
  if (f->size() < sizeof h) throw FormatError(path + ": too short for a llama2.c header");
  std::memcpy(&h, f->data(), sizeof h);
  if (!plausible(h)) throw FormatError(path + ": not a llama2.c checkpoint (implausible header)");
  const bool shared = h.vocab_size > 0;
  const int64_t V = std::abs(h.vocab_size), C = h.dim, F = h.hidden_dim, L = h.n_layers;
  const int64_t H = h.n_heads, HKV = h.n_kv_heads, D = C / H;
  Llama2cCheckpoint out;
  size_t offset = sizeof h;
  // Reads the next [n, rows, cols] block of float32 weights.
  auto next = [&](std::vector<int64_t> shape) {
    int64_t numel = 1;
    for (auto d : shape) numel *= d;
    size_t bytes = static_cast<size_t>(numel) * 4;
    if (offset + bytes > f->size())
      throw FormatError(path + ": truncated llama2.c checkpoint (weights need more than its " +
                        std::to_string(f->size()) + " bytes)");
    at::Tensor t = tensor_view(f, f->data() + offset, at::kFloat, shape);
    offset += bytes;
    return t;
  };
  // convert_llama_weights_to_hf.permute: interleaved pairs -> rotate-half halves, per head.
  auto permute = [&](const at::Tensor& w, int64_t heads) {
    int64_t rows = w.size(0), cols = w.size(1);
    return w.view({heads, rows / heads / 2, 2, cols}).transpose(1, 2).reshape({rows, cols});
  };
  out.token_embedding_table = next({V, C}).contiguous();
  at::Tensor att_norm = next({L, C});
  at::Tensor wq = next({L, H * D, C}), wk = next({L, HKV * D, C}), wv = next({L, HKV * D, C});
  at::Tensor wo = next({L, C, H * D});
  at::Tensor ffn_norm = next({L, C});
  at::Tensor w1 = next({L, F, C}), w2 = next({L, C, F}), w3 = next({L, F, C});
  out.rms_final_weight = next({C}).contiguous();
  next({h.seq_len, D / 2});  // freq_cis_real (unused: recomputed)
  next({h.seq_len, D / 2});  // freq_cis_imag
  for (int64_t i = 0; i < L; ++i) {
    Llama2cLayer layer;
    layer.rms_att_weight = att_norm[i].contiguous();
    layer.wq = permute(wq[i], H).contiguous();
    layer.wk = permute(wk[i], HKV).contiguous();
    layer.wv = wv[i].contiguous();
    layer.wo = wo[i].contiguous();
    layer.rms_ffn_weight = ffn_norm[i].contiguous();
    layer.w1 = w1[i].contiguous();
    layer.w2 = w2[i].contiguous();
    layer.w3 = w3[i].contiguous();
    out.layers.push_back(std::move(layer));
  }
  if (!shared) out.wcls = next({V, C}).contiguous();
  if (offset != f->size())
    throw FormatError(path + ": " + std::to_string(f->size() - offset) +
                      " unexpected trailing bytes after the llama2.c weights");
  out.config = {{"model_type", "llama"},
                {"architectures", {"LlamaForCausalLM"}},
                {"hidden_size", C},
                {"intermediate_size", F},
                {"num_hidden_layers", L},
                {"num_attention_heads", H},
                {"num_key_value_heads", HKV},
                {"head_dim", D},
                {"vocab_size", V},
                {"max_position_embeddings", h.seq_len},
                {"rms_norm_eps", 1e-5},
                {"rope_theta", 10000.0},
                {"hidden_act", "silu"},
                {"bos_token_id", 1},
                {"eos_token_id", 2},
                {"tie_word_embeddings", shared},
                {"torch_dtype", "float32"}};
  return out;
}

}  // namespace csa
