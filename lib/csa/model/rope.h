// Rotary position embeddings as transformers computes them (modeling_rope_utils.py):
// inv_freq in float32, frequencies = position x inv_freq, emb = cat(freqs, freqs),
// x' = x * cos + rotate_half(x) * sin on the first rotary_dim dims of each head.
#pragma once

#include <ATen/ATen.h>

#include "csa/model/config.h"

namespace csa {

// inv_freq [rotary_dim / 2], float32, with default / linear / llama3 scaling applied.
at::Tensor rope_inv_freq(const RopeConfig& rope);

class RopeTable {
 public:
  RopeTable() = default;
  RopeTable(const RopeConfig& rope, int64_t n_positions, const at::Device& device);
  // x: [B, heads, T, D]; positions are pos0 .. pos0 + T - 1. Returns the rotated x. On CUDA in
  // GPU builds one kernel (model/rope_cuda_kernel.h, the same bits) unless allow_kernel is false.
  at::Tensor apply(const at::Tensor& x, int64_t pos0, bool allow_kernel = true) const;
  // The same for one position (T = 1) held on the table's device as int64 [1] (a decode step in
  // a CUDA graph: no host value); the same operations, so the same bits.
  at::Tensor apply(const at::Tensor& x, const at::Tensor& position, bool allow_kernel = true) const;
  int64_t n_positions() const { return cos_.defined() ? cos_.size(0) : 0; }

 private:
  // x rotated by table rows [T, rd] (float32), the tensor form of apply().
  at::Tensor rotate(const at::Tensor& x, const at::Tensor& cos_rows,
                    const at::Tensor& sin_rows) const;
  // The CUDA kernel where it takes x (else undefined): rows at pos0 + t, or at *position.
  at::Tensor rotate_kernel(const at::Tensor& x, int64_t pos0, const at::Tensor* position) const;
  int64_t rotary_dim_ = 0;
  at::Tensor cos_, sin_;  // [n_positions, rotary_dim], float32
};

}  // namespace csa
