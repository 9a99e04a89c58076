// Rotary embeddings on CUDA in one launch (rope_cuda_kernel.cu) behind a plain C++ interface
// (nvcc compiles no libtorch header); RopeTable::apply (rope.cpp) is the libtorch side. The
// operations and roundings are the tensor form's (RopeTable::rotate): the float32 table rows
// rounded to x's type, x·cos and rotate_half(x)·sin each rounded to x's type, then their sum, so
// the result has the same bits. A decode step rotates q and k in every layer; as the tensor
// form's nine ATen kernels each that was about 300 launches per Llama-1B step.
#pragma once

#include <cstdint>

#include "csa/attention/fused_cuda_kernel.h"  // ElemType

namespace csa::cuda {

struct RopeArgs {
  const void* x = nullptr;  // [B, H, T, D] (strides sb, sh, st; unit stride along D)
  int64_t sb = 0, sh = 0, st = 0;
  void* out = nullptr;         // [B, H, T, D] contiguous
  const float* cos = nullptr;  // [positions, rd] contiguous, float32
  const float* sin = nullptr;
  ElemType type = ElemType::kFloat32;
  int B = 0, H = 0, T = 0, D = 0, rd = 0;
  int64_t pos0 = 0;                   // row t is at position pos0 + t ...
  const int64_t* position = nullptr;  // ... or, when set (T = 1), at *position on the device
};
// Launches on `stream` (a cudaStream_t). Returns a CUDA error string, or nullptr on success.
const char* rope_rotate(const RopeArgs& args, void* stream);

}  // namespace csa::cuda
