// The fused CUDA top-k attention kernel (fused_cuda_kernel.cu) seen from libtorch: compiled in
// GPU builds whose libtorch has CUDA and where nvcc is found (CSA_WITH_CUDA_KERNELS); elsewhere
// every call answers "not handled" and the explicit path runs.
#pragma once

#include <ATen/ATen.h>

#include "csa/attention/rule.h"

namespace csa {

// Whether this build has the kernel.
bool fused_cuda_built();

// q: [B, H, T, D], k, v: [B, Hkv, S, D] on one CUDA device, all float32, float16 or bfloat16;
// query t at position S - T + t. For a top-k rule: the attention output [B, H, T, D] (q's dtype),
// and the reads of this call in *q_reads ([H]) and *kv_reads ([Hkv]), float64 tensors on the
// device (no host synchronisation). Returns an undefined tensor when the call is not one the
// kernel handles (another rule kind, a CPU tensor, mixed dtypes, head_dim > 256, or a key length
// whose scores do not fit one block's shared memory): the caller takes the explicit path.
at::Tensor fused_attention_cuda(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                double scale, const LayerRule& rule, at::Tensor* q_reads,
                                at::Tensor* kv_reads);

}  // namespace csa
