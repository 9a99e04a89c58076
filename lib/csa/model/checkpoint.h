// Reading a model from disk, in any supported format, into one in-memory description
// (config + named weights + side files), then binding it to the decoder's canonical weights.
//
// Formats (docs/model-formats.md):
//   * a Hugging Face directory: config.json + model.safetensors | sharded model-*-of-*.safetensors
//     with model.safetensors.index.json | pytorch_model.bin (+ index); tokenizer files beside it
//   * a TorchScript archive (model.pt): csa's export (config and tokenizer embedded as extra
//     files) or a user's torch.jit.trace of a Hugging Face model (config via --config)
//   * a single .safetensors file (config via --config or config.json beside it)
//   * a llama2.c checkpoint (.bin, with tokenizer.bin / tok512.bin beside it)
#pragma once

#include <map>
#include <string>

#include "csa/core/json.h"
#include "csa/io/tensor_store.h"

namespace csa {

struct Checkpoint {
  std::string path;           // what the user named
  std::string format;         // hf-directory | torchscript | torch-pickle | safetensors | llama2c
  Json config;                // Hugging Face config.json content
  std::string config_origin;  // where the config came from (for error messages)
  TensorMap tensors;          // source names, source dtypes
  std::map<std::string, std::string> files;  // tokenizer.json, tokenizer.model, tok512.bin, ...
  Json manifest;                             // csa_manifest.json of csa archives (null otherwise)
};

// `config_override`: a config.json path that replaces (or supplies) the embedded config.
Checkpoint read_checkpoint(const std::string& path, const std::string& config_override = "");

// Names of side files carried along with a model (tokenizer and generation settings).
const std::vector<std::string>& side_file_names();

}  // namespace csa
