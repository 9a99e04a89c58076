// csa-eval's --baseline syntax: a pattern to compare a policy against, as key:value items.
#pragma once

#include <cstdint>
#include <string>

#include "csa/attention/spec.h"

namespace csa {

// "uniform:K", "topp:P" (or "top_p:P"), "window:W[,sinks:S]", "strided:S[,window:W][,sinks:S]".
// UsageError naming the text on anything else.
SparsitySpec parse_baseline(const std::string& text, int64_t n_layer, int64_t n_head);

}  // namespace csa
