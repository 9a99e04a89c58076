// The fused top-k attention kernel for CUDA (fused_cuda_kernel.cu), behind a plain C++ interface
// so that nvcc never compiles libtorch's headers. fused_cuda.{h,cpp} is the libtorch side.
#pragma once

#include <cstdint>

namespace csa::cuda {

enum class ElemType : int { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2 };

struct TopKAttentionArgs {
  const void* q = nullptr;  // [B, H, T, D], last dim contiguous, strides in elements
  const void* k = nullptr;  // [B, Hkv, S, D]
  const void* v = nullptr;  // [B, Hkv, S, D]
  void* out = nullptr;      // [B, H, T, D], contiguous
  ElemType type = ElemType::kFloat32;
  int B = 0, H = 0, Hkv = 0, T = 0, S = 0, D = 0;
  int64_t q_sb = 0, q_sh = 0, q_st = 0;
  int64_t k_sb = 0, k_sh = 0, k_ss = 0;
  int64_t v_sb = 0, v_sh = 0, v_ss = 0;
  float scale = 1;
  // The rule's budget schedule (rule.h): band starts [NB] (first 0) and budgets [H][NB].
  const int32_t* band_start = nullptr;
  const int32_t* budget = nullptr;
  int NB = 1;
  // Reads, accumulated: keys kept per query head [H] and the union per KV head [Hkv].
  unsigned long long* q_reads = nullptr;
  unsigned long long* kv_reads = nullptr;
  // Device scratch of topk_attention_scratch_bytes(args) bytes (16-byte aligned), or nullptr
  // where that is 0: the tiled kernel's group maxima, after the float32 split K and V.
  void* scratch = nullptr;
};

// Whether topk_attention takes these arguments: the tiled tensor-core kernel
// (fused_cuda_tiled.cuh: fp32 / bf16 / fp16, head_dim 64 or 128, 16-byte aligned rows,
// S <= 65536), else
// the row kernel (fused_cuda_kernel.cu) when the row's scores fit one block's shared memory.
bool topk_attention_supported(const TopKAttentionArgs& args);
// Dynamic shared memory one block of the row kernel needs for a key length S and head dim D.
int64_t topk_attention_smem_bytes(int S, int D);
// The most dynamic shared memory a block may use on the current device (bytes).
int64_t topk_attention_smem_limit();
// Bytes of device scratch topk_attention needs for these arguments (args.scratch): for the tiled
// kernel 256 bytes a query row (the first selection pass's group maxima) and, in float32, K and V
// split into TF32 high parts and remainders, 4x their float32 size (2 B Hkv S 2D floats); 0 for
// the row kernel.
int64_t topk_attention_scratch_bytes(const TopKAttentionArgs& args);
// Launches on `stream` (a cudaStream_t) the tiled kernel where it applies, else the row kernel.
// Returns a CUDA error string, or nullptr on success.
const char* topk_attention(const TopKAttentionArgs& args, void* stream);

// The tiled kernel alone (fused_cuda_tiled.cu; the kernel: fused_cuda_tiled.cuh).
bool topk_attention_tiled_supported(const TopKAttentionArgs& args);
int64_t topk_attention_tiled_smem_bytes(int D, ElemType type);
const char* topk_attention_tiled(const TopKAttentionArgs& args, void* stream);
// Test hook: the tiled kernel's float32 split (3xTF32 hi / lo) against cvt.rna.tf32.f32 over
// every float32 bit pattern on the current device; the count that differ, -1 on a CUDA error.
int64_t tiled_tf32_split_mismatches();

}  // namespace csa::cuda
