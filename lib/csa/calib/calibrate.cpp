#include "csa/calib/calibrate.h"

#include <c10/core/GradMode.h>

#include <chrono>

#include "csa/core/progress.h"
#include "csa/corpus/windows.h"

namespace csa {

CalibrationPass observe_dense(const Decoder& decoder, const std::vector<int64_t>& ids, int64_t ctx,
                              int64_t batch, AttentionHook* observer) {
  const auto start = std::chrono::steady_clock::now();
  CalibrationPass r;
  const std::vector<Window> windows = plan_windows(static_cast<int64_t>(ids.size()), ctx, ctx);
  Progress progress("calibrate", static_cast<int64_t>(ids.size()));
  c10::NoGradGuard no_grad;
  const at::Device device = decoder.model().device;
  for_each_batch(windows, ids, batch, [&](const WindowBatch& b) {
    decoder.hidden(b.tokens.to(device), observer);
    r.tokens += static_cast<int64_t>(b.count) * b.length;
    ++r.forward_passes;
    progress.advance(static_cast<int64_t>(b.count) * b.length);
  });
  progress.finish();
  r.windows = static_cast<int64_t>(windows.size());
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace csa
