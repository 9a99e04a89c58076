// Named tensors as a checkpoint stores them (source dtype, zero-copy views of mapped files),
// plus the side files a model carries (config.json, tokenizer files, ...).
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <memory>
#include <string>

#include "csa/core/file.h"

namespace csa {

// A tensor's bytes live in a mapped file; `tensor` views them (kept alive by its deleter).
struct StoredTensor {
  at::Tensor tensor;   // source dtype and shape, CPU, may be a zero-copy view
  std::string origin;  // file (and record) it came from, for error messages
};

using TensorMap = std::map<std::string, StoredTensor>;

// Wraps `size` bytes at `data` (owned by `owner`) as a tensor of `dtype` and `shape`.
at::Tensor tensor_view(std::shared_ptr<const void> owner, const uint8_t* data, at::ScalarType dtype,
                       const std::vector<int64_t>& shape);

// Bytes per element of the storage dtypes csa reads.
size_t element_size(at::ScalarType t);

}  // namespace csa
