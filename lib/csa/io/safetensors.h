// The safetensors format: an 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}, then the data.
// Every field is validated against the file before any tensor is touched.
#pragma once

#include <string>

#include "csa/core/json.h"
#include "csa/io/tensor_store.h"

namespace csa {

struct SafetensorsFile {
  TensorMap tensors;  // zero-copy views of the mapped file
  Json metadata;      // "__metadata__" (may be null)
};

// Throws IoError (missing/unreadable) or FormatError naming the file and the problem:
// header length past the end, bad JSON, unknown dtype, offsets out of range or overlapping,
// shape x dtype != bytes.
SafetensorsFile read_safetensors(const std::string& path);

// Parses and validates only the header of an in-memory file image (used by the fuzzer).
SafetensorsFile parse_safetensors(std::shared_ptr<const MappedFile> file);

// Writes tensors (any dtype safetensors knows) to `path` atomically.
void write_safetensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors,
                       const Json& metadata = Json());

}  // namespace csa
