#include "csa/model/rope.h"

#include <ATen/Parallel.h>

#include <climits>
#include <cmath>

#include "csa/core/error.h"

#ifdef CSA_WITH_CUDA_KERNELS
#include <ATen/cuda/CUDAContext.h>

#include "csa/attention/fused_cuda.h"  // kernel_elem_type
#include "csa/model/rope_cuda_kernel.h"
#endif

namespace csa {

at::Tensor rope_inv_freq(const RopeConfig& rope) {
  const int64_t dim = rope.rotary_dim;
  // _compute_default_rope_parameters:
  //   1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
  at::Tensor exponent = at::arange(0, dim, 2, at::kLong).to(at::kFloat) / static_cast<double>(dim);
  at::Tensor base = at::full({1}, rope.theta, at::kFloat);
  at::Tensor inv_freq = 1.0 / at::pow(base, exponent);
  if (rope.type == RopeType::kLinear) {
    inv_freq = inv_freq / rope.factor;  // _compute_linear_scaling_rope_parameters
  } else if (rope.type == RopeType::kLlama3) {
    // _compute_llama3_parameters
    const double factor = rope.factor, low = rope.low_freq_factor, high = rope.high_freq_factor;
    const double old_ctx = static_cast<double>(rope.original_max_position);
    const double low_freq_wavelen = old_ctx / low, high_freq_wavelen = old_ctx / high;
    at::Tensor wavelen = 2 * M_PI / inv_freq;
    at::Tensor llama = at::where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq);
    at::Tensor smooth = (old_ctx / wavelen - low) / (high - low);
    at::Tensor smoothed = (1 - smooth) * llama / factor + smooth * llama;
    at::Tensor medium = at::logical_not(wavelen < high_freq_wavelen)
                            .logical_and(at::logical_not(wavelen > low_freq_wavelen));
    inv_freq = at::where(medium, smoothed, llama);
  }
  return inv_freq;
}

RopeTable::RopeTable(const RopeConfig& rope, int64_t n_positions, const at::Device& device)
    : rotary_dim_(rope.rotary_dim) {
  at::Tensor inv_freq = rope_inv_freq(rope);                           // [rd/2]
  at::Tensor pos = at::arange(n_positions, at::kLong).to(at::kFloat);  // [P]
  at::Tensor freqs = pos.unsqueeze(1) * inv_freq.unsqueeze(0);         // [P, rd/2]
  at::Tensor emb = at::cat({freqs, freqs}, -1);                        // [P, rd]
  cos_ = emb.cos().to(device);
  sin_ = emb.sin().to(device);
}

namespace {

// The float32 CPU form of apply() in one pass: x1' = x1·cos - x2·sin, x2' = x2·cos + x1·sin on
// the rotary half-pairs (cos and sin repeat after rd / 2), the rest copied. The same float
// operations as the tensor form (a product each, then a sum; no fused multiply-add, since this
// file is built for baseline x86-64), so the same bits.
at::Tensor rotate_cpu(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                      int64_t pos0, int64_t rd) {
  const int64_t B = x.size(0), H = x.size(1), T = x.size(2), D = x.size(3), half = rd / 2;
  at::Tensor out = at::empty({B, H, T, D}, x.options());  // [B, H, T, D]
  const float* xp = x.data_ptr<float>();
  const int64_t sb = x.stride(0), sh = x.stride(1), st = x.stride(2);
  const float* cp = cos.data_ptr<float>();  // [P, rd]
  const float* sp = sin.data_ptr<float>();
  float* op = out.data_ptr<float>();
  at::parallel_for(0, B * H * T, 256, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / (H * T), h = (row / T) % H, t = row % T;
      const float* xi = xp + b * sb + h * sh + t * st;
      const float* c = cp + (pos0 + t) * rd;
      const float* s = sp + (pos0 + t) * rd;
      float* o = op + row * D;
      for (int64_t i = 0; i < half; ++i) {
        const float x1 = xi[i], x2 = xi[i + half];
        o[i] = x1 * c[i] + -x2 * s[i];
        o[i + half] = x2 * c[i + half] + x1 * s[i + half];
      }
      for (int64_t i = rd; i < D; ++i) o[i] = xi[i];
    }
  });
  return out;
}

}  // namespace

at::Tensor RopeTable::apply(const at::Tensor& x, int64_t pos0, bool allow_kernel) const {
  const int64_t T = x.size(2), rd = rotary_dim_;
  CSA_CHECK(pos0 + T <= n_positions(), "rotary table too short for these positions");
  if (x.is_cpu() && x.scalar_type() == at::kFloat && x.stride(3) == 1 && rd % 2 == 0 &&
      cos_.scalar_type() == at::kFloat && cos_.is_contiguous() && sin_.is_contiguous())
    return rotate_cpu(x, cos_, sin_, pos0, rd);
  if (allow_kernel) {
    at::Tensor out = rotate_kernel(x, pos0, nullptr);
    if (out.defined()) return out;
  }
  return rotate(x, cos_.narrow(0, pos0, T), sin_.narrow(0, pos0, T));
}

at::Tensor RopeTable::apply(const at::Tensor& x, const at::Tensor& position,
                            bool allow_kernel) const {
  CSA_CHECK(x.size(2) == 1 && position.numel() == 1, "rope: one device position, one row");
  if (allow_kernel) {
    at::Tensor out = rotate_kernel(x, 0, &position);
    if (out.defined()) return out;
  }
  return rotate(x, cos_.index_select(0, position), sin_.index_select(0, position));
}

at::Tensor RopeTable::rotate_kernel(const at::Tensor& x, int64_t pos0,
                                    const at::Tensor* position) const {
#ifdef CSA_WITH_CUDA_KERNELS
  cuda::ElemType type;
  const int64_t rd = rotary_dim_;
  if (!x.is_cuda() || x.dim() != 4 || x.stride(3) != 1 || rd % 2 != 0 || rd > x.size(3) ||
      cos_.device() != x.device() || !cos_.is_contiguous() || !sin_.is_contiguous() ||
      cos_.scalar_type() != at::kFloat || !kernel_elem_type(x.scalar_type(), &type) ||
      x.numel() >= INT_MAX)
    return {};
  if (position != nullptr &&
      (position->device() != x.device() || position->scalar_type() != at::kLong))
    return {};
  at::Tensor out = at::empty(x.sizes(), x.options());
  cuda::RopeArgs a;
  a.x = x.data_ptr(), a.sb = x.stride(0), a.sh = x.stride(1), a.st = x.stride(2);
  a.out = out.data_ptr(), a.cos = cos_.data_ptr<float>(), a.sin = sin_.data_ptr<float>();
  a.type = type;
  a.B = static_cast<int>(x.size(0)), a.H = static_cast<int>(x.size(1));
  a.T = static_cast<int>(x.size(2)), a.D = static_cast<int>(x.size(3));
  a.rd = static_cast<int>(rd), a.pos0 = pos0;
  a.position = position != nullptr ? position->data_ptr<int64_t>() : nullptr;
  if (const char* err = cuda::rope_rotate(a, at::cuda::getCurrentCUDAStream().stream()))
    throw Error(ErrorKind::kInternal, std::string("CUDA rotary kernel: ") + err);
  return out;
#else
  (void)x, (void)pos0, (void)position;
  return {};
#endif
}

at::Tensor RopeTable::rotate(const at::Tensor& x, const at::Tensor& cos_rows,
                             const at::Tensor& sin_rows) const {
  const int64_t rd = rotary_dim_;
  at::Tensor cos = cos_rows.to(x.scalar_type());  // [T, rd]
  at::Tensor sin = sin_rows.to(x.scalar_type());
  at::Tensor xr = x.narrow(-1, 0, rd);
  at::Tensor x1 = xr.narrow(-1, 0, rd / 2), x2 = xr.narrow(-1, rd / 2, rd / 2);
  at::Tensor rotated = at::cat({x2.neg(), x1}, -1);  // rotate_half
  at::Tensor out = xr * cos + rotated * sin;
  if (rd == x.size(-1)) return out;
  return at::cat({out, x.narrow(-1, rd, x.size(-1) - rd)}, -1);
}

}  // namespace csa
