#include "csa/corpus/windows.h"

#include <algorithm>

#include "csa/core/error.h"

namespace csa {

std::vector<Window> plan_windows(int64_t n, int64_t ctx, int64_t stride) {
  CSA_CHECK(ctx >= 2 && stride >= 1 && stride <= ctx, "window plan parameters");
  std::vector<Window> out;
  int64_t prev_end = 0;
  for (int64_t begin = 0; begin < n; begin += stride) {
    const int64_t end = std::min(begin + ctx, n);
    const int64_t trg = end - prev_end;  // targets no earlier window scored
    Window w{begin, end, std::max<int64_t>(1, (end - begin) - trg)};
    if (end - begin >= 2) out.push_back(w);
    prev_end = end;
    if (end == n) break;
  }
  return out;
}

Json EvalProtocol::to_json() const {
  return {{"ctx", ctx},
          {"stride", stride},
          {"buckets", buckets},
          {"batch", batch},
          {"protocol", "sliding-window (Hugging Face fixed-length perplexity)"}};
}

EvalProtocol resolve_protocol(EvalProtocol p, const ModelConfig& c, const std::string& flag_ctx,
                              bool on_gpu) {
  if (p.ctx == 0) p.ctx = c.n_ctx;
  if (p.ctx < 2) throw UsageError(flag_ctx + " must be >= 2");
  if (p.ctx > c.n_ctx)
    throw InputError(flag_ctx + " " + std::to_string(p.ctx) +
                     " is longer than the model supports (" +
                     "max_position_embeddings = " + std::to_string(c.n_ctx) + ")");
  if (p.stride == 0) p.stride = std::max<int64_t>(1, p.ctx / 2);
  if (p.stride < 1 || p.stride > p.ctx)
    throw UsageError("--stride must be in [1, ctx=" + std::to_string(p.ctx) + "]");
  if (p.buckets < 1 || p.buckets > p.ctx) throw UsageError("--buckets must be in [1, ctx]");
  if (p.batch == 0) p.batch = std::max<int64_t>(1, (on_gpu ? 65536 : 8192) / p.ctx);
  return p;
}

void for_each_batch(const std::vector<Window>& windows, const std::vector<int64_t>& ids,
                    int64_t max_batch, const std::function<void(const WindowBatch&)>& fn) {
  CSA_CHECK(max_batch >= 1, "batch size");
  size_t i = 0;
  while (i < windows.size()) {
    WindowBatch b;
    b.first = i;
    b.length = windows[i].end - windows[i].begin;
    size_t j = i;
    while (j < windows.size() && static_cast<int64_t>(j - i) < max_batch &&
           windows[j].end - windows[j].begin == b.length)
      ++j;
    b.count = j - i;
    b.tokens = at::empty({static_cast<int64_t>(b.count), b.length}, at::kLong);  // [count, len]
    for (size_t w = i; w < j; ++w)
      std::copy(ids.begin() + windows[w].begin, ids.begin() + windows[w].end,
                b.tokens[static_cast<int64_t>(w - i)].data_ptr<int64_t>());
    fn(b);
    i = j;
  }
}

}  // namespace csa
