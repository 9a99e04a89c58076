// The tiled top-k attention kernel (fused_cuda_tiled.cuh) instantiated for float16, head dim 64
// and 128: a translation unit of its own so that nvcc builds each element type in parallel.
#include "csa/attention/fused_cuda_tiled.cuh"

namespace csa::cuda::tiled {

const char* launch_f16(const TopKAttentionArgs& a, cudaStream_t stream) {
  return a.D == 64 ? launch<__half, 64>(a, stream) : launch<__half, 128>(a, stream);
}

}  // namespace csa::cuda::tiled
