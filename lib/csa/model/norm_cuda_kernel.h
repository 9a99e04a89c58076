// RMSNorm rows on CUDA in one launch (norm_cuda_kernel.cu) behind a plain C++ interface (nvcc
// compiles no libtorch header); csa::rms_norm (decoder.h) is the libtorch side. The operations
// are the tensor form's (LlamaRMSNorm / Qwen2RMSNorm): float32 mean of squares, r = rsqrt(mean +
// eps), y = (x · r) rounded to x's type, out = w · y rounded to x's type. A decode step runs
// 2 · layers + 1 of them; as eight element-wise ATen kernels each they were a fifth of a graphed
// Llama-1B step.
#pragma once

#include <cstdint>

#include "csa/attention/fused_cuda_kernel.h"  // ElemType

namespace csa::cuda {

struct RmsNormArgs {
  const void* x = nullptr;  // [N, C] contiguous
  const void* w = nullptr;  // [C], the same element type
  void* out = nullptr;      // [N, C] contiguous
  ElemType type = ElemType::kFloat32;
  int64_t N = 0;
  int C = 0;
  float eps = 1e-6f;
};
// Launches on `stream` (a cudaStream_t). Returns a CUDA error string, or nullptr on success.
const char* rms_norm(const RmsNormArgs& args, void* stream);

}  // namespace csa::cuda
