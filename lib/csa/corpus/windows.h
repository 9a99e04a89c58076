// How a token stream is cut into model inputs: the sliding-window plan of METHOD.md (the Hugging
// Face "perplexity of fixed-length models" protocol), the evaluation protocol's parameters, and
// the batching of equal-length windows into forward passes. Calibration (non-overlapping windows)
// and evaluation (overlapping windows) both plan and batch here.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "csa/core/json.h"
#include "csa/model/config.h"

namespace csa {

struct Window {
  int64_t begin = 0, end = 0;  // token range [begin, end)
  int64_t first_scored = 1;    // window-relative index of the first scored target token
};

// The HF protocol's windows over n tokens: windows of ctx tokens advanced by stride; the first
// window scores all its targets, each later one only the targets no earlier window scored.
// ctx >= 2, 1 <= stride <= ctx. stride == ctx gives non-overlapping windows (calibration).
std::vector<Window> plan_windows(int64_t n_tokens, int64_t ctx, int64_t stride);

struct EvalProtocol {
  int64_t ctx = 0;       // window length (0: the model's context)
  int64_t stride = 0;    // 0: ctx / 2
  int64_t buckets = 16;  // per-position buckets
  int64_t batch = 0;     // windows per forward pass (0: automatic)
  Json to_json() const;
};

// Resolves zeros to defaults and checks against the model (ctx <= max_position_embeddings...).
// Fills defaults: ctx = the model's, stride = ctx / 2, batch = 8192 / ctx windows per forward on
// CPU, 65536 / ctx on a GPU (which needs wide batches to be busy).
EvalProtocol resolve_protocol(EvalProtocol p, const ModelConfig& c, const std::string& flag_ctx,
                              bool on_gpu = false);

// One forward pass worth of windows: consecutive windows of equal length, at most `max_batch`.
struct WindowBatch {
  size_t first = 0, count = 0;  // windows[first, first + count)
  int64_t length = 0;           // tokens per window
  at::Tensor tokens;            // [count, length] int64 on the CPU
};

// Calls `fn` for each batch of consecutive equal-length windows (at most max_batch each), in
// order, with the batch's token ids gathered from `ids`.
void for_each_batch(const std::vector<Window>& windows, const std::vector<int64_t>& ids,
                    int64_t max_batch, const std::function<void(const WindowBatch&)>& fn);

}  // namespace csa
