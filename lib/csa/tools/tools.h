// The tool runs: csa-calibrate, csa-sweep, csa-eval and csa-generate as library calls (the apps
// only parse options). This layer sits above calib and eval: it loads models and corpora, wires
// calibration, allocation, sweeps and evaluation together, and writes the JSON documents.
#pragma once

#include <string>
#include <vector>

#include "csa/calib/policy.h"
#include "csa/corpus/corpus.h"
#include "csa/eval/perplexity.h"
#include "csa/eval/sweep.h"
#include "csa/model/generate.h"

namespace csa {

inline constexpr int kResultsSchemaVersion = 1;

struct CalibrateToolOptions {
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
Policy run_calibrate(const CalibrateToolOptions& options, const std::string& command);

struct SweepToolOptions {
  ModelArgs model;
  std::string policy;
  std::string corpus;
  CorpusOptions corpus_options;
  int64_t offset = -1;     // -1: right after the calibration tokens when the corpus is the same
  int64_t tokens = 32768;  // sweep slice length
  EvalProtocol protocol;
  SweepOptions sweep;
  bool uniform = true;  // also find the best uniform top-k on the same slice
  bool allow_other_weights = false;
};

struct SweepOutputs {
  Json policy;   // the re-capped policy (null if no cap matched)
  Json results;  // dense pass, every probe, the choice, the uniform baseline
  bool matched = false;
};

SweepOutputs run_sweep(const SweepToolOptions& options, const std::string& command);

struct EvalToolOptions {
  ModelArgs model;
  std::string corpus;
  CorpusOptions corpus_options;
  std::string policy;                  // optional
  std::vector<std::string> baselines;  // uniform:K, topp:P, window:W[,sinks:S], strided:S[,...]
  int64_t offset = 0;
  int64_t max_tokens = 0;  // 0: the whole corpus
  EvalProtocol protocol;
  double tolerance = 0.005;
  double position_tolerance = 0.01;
  bool allow_other_weights = false;
};

struct EvalOutputs {
  Json results;
  bool policy_matches = true;  // the policy met dense-matching quality (true if no policy)
};

EvalOutputs run_eval(const EvalToolOptions& options, const std::string& command);

struct GenerateToolOptions {
  ModelArgs model;
  std::string prompt;  // text; empty: start from BOS
  std::string policy;  // optional: also generate with the policy, side by side
  GenerateOptions generate;
  bool allow_other_weights = false;
};

// {"prompt", "dense": {"text", "ids"}, "policy": {...}} and the run metadata.
Json run_generate(const GenerateToolOptions& options, const std::string& command);

}  // namespace csa
