// TorchScript archives (`model.pt`): a ZIP with <root>/data.pkl (the module object graph),
// <root>/data/<key> (tensor storages), <root>/extra/<name> (extra files), <root>/code/...
//
// Reading never compiles the archive's TorchScript code: csa walks the pickled module tree and
// names every tensor attribute by its dotted module path, which for an exported or traced
// Hugging Face model is exactly the state-dict name ("model.layers.0.self_attn.q_proj.weight").
// So archives written by any torch version (1.x or 2.x, scripted or traced) load the same way.
#pragma once

#include <map>
#include <string>

#include "csa/core/json.h"
#include "csa/io/tensor_store.h"

namespace csa {

struct TorchScriptArchive {
  TensorMap tensors;                         // dotted attribute path -> tensor (zero-copy)
  std::map<std::string, std::string> extra;  // extra files by name
  std::string root;                          // the archive's top-level folder
};

// Throws IoError / FormatError naming the file: not a ZIP, truncated, no data.pkl,
// a storage record missing or shorter than its tensor needs.
TorchScriptArchive read_torchscript(const std::string& path);
// The same over an already opened (or in-memory, MappedFile::from_bytes) archive.
TorchScriptArchive read_torchscript(std::shared_ptr<const MappedFile> file);

// Writes a TorchScript module whose nested submodules carry `tensors` under their dotted names
// (as parameters), with `extra` files embedded; loads in torch.jit.load / torch::jit::load.
// Written to a temporary file and renamed: no partial archive is ever left behind.
void write_torchscript(const std::string& path, const std::map<std::string, at::Tensor>& tensors,
                       const std::map<std::string, std::string>& extra);

}  // namespace csa
