// llama2.c checkpoints (karpathy/llama2.c, legacy "version 0" export): a 7 x int32 header
// (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size (negative = unshared classifier),
// seq_len) followed by float32 weights. Read into run.c's TransformerWeights, one tensor per layer
// and Hugging Face's layout: q/k rows are permuted from llama2.c's interleaved rotary pairs to HF's
// rotate-half convention, exactly as transformers' convert_llama_weights_to_hf does.
//
// The tensors carry no Hugging Face names: the llama family owns those
// (model/families/llama.h: llama2c_tensors), and io is below model.
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "csa/core/json.h"

namespace csa {

// One transformer layer; C = dim, F = hidden_dim, H / Hkv = heads, D = C / H.
struct Llama2cLayer {
  at::Tensor rms_att_weight;  // [C]
  at::Tensor wq;              // [H·D, C]    rotate-half row order
  at::Tensor wk;              // [Hkv·D, C]  rotate-half row order
  at::Tensor wv;              // [Hkv·D, C]
  at::Tensor wo;              // [C, H·D]
  at::Tensor rms_ffn_weight;  // [C]
  at::Tensor w1;              // [F, C]  gate
  at::Tensor w2;              // [C, F]  down
  at::Tensor w3;              // [F, C]  up
};

// Contiguous float32 tensors viewing (or, for q/k, copied from) the mapped file.
struct Llama2cCheckpoint {
  at::Tensor token_embedding_table;  // [V, C]
  std::vector<Llama2cLayer> layers;
  at::Tensor rms_final_weight;  // [C]
  at::Tensor wcls;              // [V, C]; undefined when shared with the embedding
  Json config;                  // a Hugging Face LlamaConfig equivalent
};

bool is_llama2c_checkpoint(const std::string& path);
Llama2cCheckpoint read_llama2c(const std::string& path);

}  // namespace csa
