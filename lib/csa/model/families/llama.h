// The llama family's reading of llama2.c checkpoints (io/llama2c.h): their weights under the
// Hugging Face Llama names that the family's tensor list binds. The names are spelled once, in
// llama.cpp; io, below model, returns the llama2.c weights unnamed.
#pragma once

#include <string>

#include "csa/io/llama2c.h"
#include "csa/io/tensor_store.h"

namespace csa {

// Every tensor of `l` under its LlamaForCausalLM state-dict name; origins are "<path>: <name>".
TensorMap llama2c_tensors(const Llama2cCheckpoint& l, const std::string& path);

}  // namespace csa
