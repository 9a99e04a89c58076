// RMSNorm rows in one kernel (norm_cuda_kernel.h says what it computes).
#include <cuda_runtime.h>

#include "csa/attention/cuda_common.cuh"
#include "csa/model/norm_cuda_kernel.h"

namespace csa::cuda {
namespace {

constexpr int kNormThreads = 256;

// A block per row: each thread sums the squares of channels tid, tid + 256, ... in order, the
// block adds the threads' sums in a fixed tree (deterministic), then each thread writes its
// channels.
template <typename T>
__global__ void __launch_bounds__(kNormThreads) rms_norm_kernel(RmsNormArgs a) {
  __shared__ float red[kNormThreads];
  const int64_t row = blockIdx.x;
  const T* x = static_cast<const T*>(a.x) + row * a.C;
  const T* w = static_cast<const T*>(a.w);
  T* out = static_cast<T*>(a.out) + row * a.C;
  float ss = 0;
  for (int c = threadIdx.x; c < a.C; c += kNormThreads) {
    const float v = to_f(x[c]);
    ss += v * v;
  }
  ss = block_reduce<kNormThreads>(ss, red, [](float p, float q) { return p + q; });
  const float r = rsqrtf(ss / static_cast<float>(a.C) + a.eps);
  for (int c = threadIdx.x; c < a.C; c += kNormThreads)
    store(to_f(w[c]) * round_to<T>(to_f(x[c]) * r), out + c);  // w · (x · r in x's type)
}

}  // namespace

const char* rms_norm(const RmsNormArgs& a, void* stream) {
  if (a.N == 0) return nullptr;
  auto st = static_cast<cudaStream_t>(stream);
  with_elem_type(a.type, 0, [&](auto tag) {
    rms_norm_kernel<typename decltype(tag)::type>
        <<<static_cast<unsigned>(a.N), kNormThreads, 0, st>>>(a);
    return 0;
  });
  if (cudaError_t e = cudaGetLastError()) return cudaGetErrorString(e);
  return nullptr;
}

}  // namespace csa::cuda
