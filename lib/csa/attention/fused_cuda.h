// The fused CUDA top-k attention kernel (fused_cuda_kernel.cu) seen from libtorch: compiled in
// GPU builds whose libtorch has CUDA and where nvcc is found (CSA_WITH_CUDA_KERNELS); elsewhere
// every call answers "not handled" and the explicit path runs.
#pragma once

#include <ATen/ATen.h>

#include "csa/attention/rule.h"

#ifdef CSA_WITH_CUDA_KERNELS
#include "csa/attention/fused_cuda_kernel.h"
#endif

namespace csa {

// Whether this build has the kernel.
bool fused_cuda_built();

#ifdef CSA_WITH_CUDA_KERNELS
// The kernels' element type of a dtype (float32, float16, bfloat16); false for others. GPU
// builds only (the type lives in fused_cuda_kernel.h).
bool kernel_elem_type(at::ScalarType st, cuda::ElemType* type);
#endif

// A top_k rule's budget schedule on `device` as int32 [NB band starts | H x NB budgets, each
// clamped to 1..S], cached per (rule, device) so that a forward pass copies it once. The CUDA
// kernels (this one and decode.h's) read it; GPU builds only (std::logic_error elsewhere).
at::Tensor device_budget_schedule(const LayerRule& rule, int64_t H, int64_t S,
                                  const at::Device& device);

// The tiled kernel's float32 operand split (3xTF32, fused_cuda_tiled.cuh) against the device's
// cvt.rna.tf32.f32 on every float32 bit pattern: how many differ (NaN inputs: the split must keep
// the NaN in hi or lo). Runs on the current CUDA device; GPU builds only (std::logic_error
// elsewhere); a CUDA error is std::runtime_error.
int64_t tf32_split_mismatches_cuda();

// q: [B, H, T, D], k, v: [B, Hkv, S, D] on one CUDA device, all float32, float16 or bfloat16;
// query t at position S - T + t. For a top-k rule: the attention output [B, H, T, D] (q's dtype),
// and the reads of this call in *q_reads ([H]) and *kv_reads ([Hkv]), float64 tensors on the
// device (no host synchronisation). Returns an undefined tensor when the call is not one the
// kernels handle (another rule kind, a CPU tensor, mixed dtypes, head_dim > 256, or a shape that
// neither the tiled nor the row kernel takes: cuda::topk_attention_supported): the caller takes
// the explicit path.
at::Tensor fused_attention_cuda(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                double scale, const LayerRule& rule, at::Tensor* q_reads,
                                at::Tensor* kv_reads);

}  // namespace csa
