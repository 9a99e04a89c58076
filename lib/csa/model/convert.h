// Converting any readable checkpoint into a csa TorchScript archive (model.pt) in C++, so users
// without Python can make the archive the tools take. The archive is the format
// scripts/export_torchscript.py writes (docs/model-formats.md).
#pragma once

#include <string>

#include "csa/core/json.h"

namespace csa {

struct ConvertOptions {
  std::string input;           // HF directory, .safetensors, llama2.c .bin, or another archive
  std::string output;          // model.pt
  std::string config_path;     // optional config.json override
  std::string dtype = "keep";  // keep | float32 | bfloat16 | float16
  std::string name;            // model name for the manifest (default: the input's name)
};

// Validates the model fully (loads it through the decoder's tensor visitor) before writing.
// Returns the manifest written into the archive.
Json convert_to_torchscript(const ConvertOptions& options);

}  // namespace csa
