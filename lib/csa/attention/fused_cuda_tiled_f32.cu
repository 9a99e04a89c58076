// The tiled top-k attention kernel (fused_cuda_tiled.cuh) instantiated for float32, head dim 64
// and 128: a translation unit of its own so that nvcc builds each element type in parallel.
#include "csa/attention/fused_cuda_tiled.cuh"

namespace csa::cuda::tiled {

const char* launch_f32(const TopKAttentionArgs& a, cudaStream_t stream) {
  return a.D == 64 ? launch<float, 64>(a, stream) : launch<float, 128>(a, stream);
}

}  // namespace csa::cuda::tiled
