#include "csa/model/rope.h"

#include <cmath>

#include "csa/core/error.h"

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

at::Tensor RopeTable::apply(const at::Tensor& x, int64_t pos0) const {
  const int64_t T = x.size(2), rd = rotary_dim_;
  CSA_CHECK(pos0 + T <= n_positions(), "rotary table too short for these positions");
  at::Tensor cos = cos_.narrow(0, pos0, T).to(x.scalar_type());  // [T, rd]
  at::Tensor sin = sin_.narrow(0, pos0, T).to(x.scalar_type());
  at::Tensor xr = x.narrow(-1, 0, rd);
  at::Tensor x1 = xr.narrow(-1, 0, rd / 2), x2 = xr.narrow(-1, rd / 2, rd / 2);
  at::Tensor rotated = at::cat({x2.neg(), x1}, -1);  // rotate_half
  at::Tensor out = xr * cos + rotated * sin;
  if (rd == x.size(-1)) return out;
  return at::cat({out, x.narrow(-1, rd, x.size(-1) - rd)}, -1);
}

}  // namespace csa
