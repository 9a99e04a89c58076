// Rotary embeddings in one kernel (rope_cuda_kernel.h says what it computes).
#include <cuda_runtime.h>

#include "csa/attention/cuda_common.cuh"
#include "csa/model/rope_cuda_kernel.h"

namespace csa::cuda {
namespace {

constexpr int kRopeThreads = 64;

// A block per row (b, h, t); thread i rotates the pair (i, i + rd/2) and copies the channels
// past rd. Products and the sum with explicit rounding (no fused multiply-add), as the tensor
// form's three element-wise kernels compute them.
template <typename T>
__global__ void __launch_bounds__(kRopeThreads) rope_kernel(RopeArgs a) {
  const int64_t row = blockIdx.x;
  const int t = static_cast<int>(row % a.T), h = static_cast<int>(row / a.T % a.H),
            b = static_cast<int>(row / (int64_t(a.T) * a.H));
  const T* x = static_cast<const T*>(a.x) + b * a.sb + h * a.sh + t * a.st;
  T* out = static_cast<T*>(a.out) + row * a.D;
  const int64_t pos = a.position != nullptr ? *a.position : a.pos0 + t;
  const float* c = a.cos + pos * a.rd;
  const float* s = a.sin + pos * a.rd;
  const int half = a.rd / 2;
  for (int i = threadIdx.x; i < half; i += kRopeThreads) {
    const float x1 = to_f(x[i]), x2 = to_f(x[i + half]);
    const float c1 = round_to<T>(c[i]), s1 = round_to<T>(s[i]);
    const float c2 = round_to<T>(c[i + half]), s2 = round_to<T>(s[i + half]);
    const float a1 = round_to<T>(__fmul_rn(x1, c1)), b1 = round_to<T>(__fmul_rn(-x2, s1));
    const float a2 = round_to<T>(__fmul_rn(x2, c2)), b2 = round_to<T>(__fmul_rn(x1, s2));
    store(__fadd_rn(a1, b1), out + i);
    store(__fadd_rn(a2, b2), out + i + half);
  }
  for (int i = a.rd + threadIdx.x; i < a.D; i += kRopeThreads) out[i] = x[i];
}

}  // namespace

const char* rope_rotate(const RopeArgs& a, void* stream) {
  const int64_t rows = int64_t(a.B) * a.H * a.T;
  if (rows == 0) return nullptr;
  auto st = static_cast<cudaStream_t>(stream);
  with_elem_type(a.type, 0, [&](auto tag) {
    rope_kernel<typename decltype(tag)::type>
        <<<static_cast<unsigned>(rows), kRopeThreads, 0, st>>>(a);
    return 0;
  });
  if (cudaError_t e = cudaGetLastError()) return cudaGetErrorString(e);
  return nullptr;
}

}  // namespace csa::cuda
