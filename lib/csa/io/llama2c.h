// llama2.c checkpoints (karpathy/llama2.c, legacy "version 0" export): a 7 x int32 header
// (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size (negative = unshared classifier),
// seq_len) followed by float32 weights. Read into Hugging Face Llama names and layout: q/k rows
// are permuted from llama2.c's interleaved rotary pairs to HF's rotate-half convention, exactly
// as transformers' convert_llama_weights_to_hf does.
#pragma once

#include <string>

#include "csa/core/json.h"
#include "csa/io/tensor_store.h"

namespace csa {

struct Llama2cCheckpoint {
  TensorMap tensors;  // Hugging Face Llama names
  Json config;        // a Hugging Face LlamaConfig equivalent
};

bool is_llama2c_checkpoint(const std::string& path);
Llama2cCheckpoint read_llama2c(const std::string& path);

}  // namespace csa
