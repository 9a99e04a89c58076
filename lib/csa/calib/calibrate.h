// csa-calibrate as a library call: a dense pass over calibration text with the statistics
// observer, then the proportional allocation at an initial cap -> a policy.
#pragma once

#include <string>

#include "csa/calib/policy.h"
#include "csa/eval/corpus.h"

namespace csa {

struct CalibrateOptions {
  ModelArgs model;
  std::string corpus;
  CorpusOptions corpus_options;
  int64_t tokens = 10000;            // calibration tokens
  int64_t offset = 0;                // first corpus token used
  int64_t ctx = 0;                   // window length (0: the model's context)
  int64_t batch = 0;                 // windows per forward (0: automatic)
  std::string metric = "mass_keys";  // default: matched dense on 4/4 mini models (docs/metrics.md)
  double tau = 0.9;
  int64_t k_max = 0;  // 0: the largest cell's measured diffuseness, rounded up to 8
  int64_t floor = 4;
  bool per_kv_group = false;
};

// Returns the policy (with run metadata for `command`).
Policy calibrate(const CalibrateOptions& options, const std::string& command);

}  // namespace csa
